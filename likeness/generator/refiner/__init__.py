"""The diffusion refiner: a small conditional UNet (diffusers) that restores the detail
the generator's warped render lacks, predicted as a residual and blended into the face
only (a feathered mask of the render's keypoints), with a few-step DDIM sampler.

Modules, one job each: `config` (network, sampler and training dataclasses), `mask`
(face mask and eye/mouth boxes from keypoints), `network` (the UNet), `model` (the
inference wrapper: weights, sampling, blending), `pairs` (render/target pairs cached
from a pack), `data` (crops of those pairs for training), `train` (the resumable loop).
Importing this package loads nothing: diffusers is imported where a UNet is built.
"""
