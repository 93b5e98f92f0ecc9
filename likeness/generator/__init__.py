"""Portrait animation: implicit-keypoint warping of a 3D appearance volume.

`networks/` holds one `nn.Module` per block, `model.py` the wrapper that owns weights
and device, `pipeline.py` files, faces and writing, `train.py` training. Importing this
package loads nothing.
"""
