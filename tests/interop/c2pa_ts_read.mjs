// Read and validate C2PA manifests with @trustnxt/c2pa-ts (an independent, pure
// TypeScript implementation); one JSON line per file given on the command line:
// {file, manifest, valid, status: [{code, success, url, explanation}], exception?}.
// Used by tests/test_c2pa_interop.py, which copies it next to its node_modules.
import * as fs from 'node:fs/promises';
import { BMFF, JPEG, PNG } from '@trustnxt/c2pa-ts/asset';
import { SuperBox } from '@trustnxt/c2pa-ts/jumbf';
import { ManifestStore, ValidationResult } from '@trustnxt/c2pa-ts/manifest';

// Its BMFF reader knows only HEIF brands; MP4 files say isom/mp41/mp42/iso2/avc1.
for (const brand of ['isom', 'mp41', 'mp42', 'iso2', 'avc1']) BMFF.canReadBrands.add(brand);

for (const file of process.argv.slice(2)) {
  const out = { file };
  try {
    const buf = new Uint8Array(await fs.readFile(file));
    let asset;
    if (JPEG.canRead(buf)) asset = new JPEG(buf);
    else if (PNG.canRead(buf)) asset = new PNG(buf);
    else if (BMFF.canRead(buf)) asset = new BMFF(buf);
    if (!asset) {
      out.error = 'not a JPEG, PNG or BMFF file';
    } else {
      const jumbf = asset.getManifestJUMBF();
      out.manifest = Boolean(jumbf);
      if (jumbf) {
        let result;
        try {
          const store = ManifestStore.read(SuperBox.fromBuffer(jumbf));
          out.active_label = store.getActiveManifest()?.label ?? null;
          result = await store.validate(asset);
        } catch (e) {
          result = ValidationResult.fromError(e);
          out.exception = String(e);
        }
        out.valid = result.isValid;
        out.status = result.statusEntries.map((s) => ({
          code: s.code, success: s.success, url: s.url ?? null, explanation: s.explanation ?? null,
        }));
      }
    }
  } catch (e) {
    out.error = String(e);
  }
  console.log(JSON.stringify(out));
}
