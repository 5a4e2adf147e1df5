// Downloads through a local HTTP server: caching, hash checks, resuming, flowers() end to end, and
// the ImageNet weights refusing a file whose hash is not the official one.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { flowers, loadInceptionV3, syntheticShapes } from "inception-lab";
import { cachedDownload } from "../kernel-helpers/util/download";
import { scratch, serveFolder } from "./helpers";
import { createHash } from "crypto";

const md5 = (file: string) => createHash("md5").update(fs.readFileSync(file)).digest("hex");

test("cachedDownload fetches once, checks the hash, resumes a partial file and removes a bad one", async () => {
  const served = scratch("served");
  const payload = Buffer.alloc(3_000_000).map((_, i) => (i * 7) % 251);
  fs.writeFileSync(path.join(served, "blob.bin"), payload);
  const server = await serveFolder(served);
  process.env.INCEPTION_LAB_CACHE = scratch("download-cache");
  try {
    const hash = `md5:${md5(path.join(served, "blob.bin"))}`;
    const file = await cachedDownload(`${server.url}blob.bin`, "blob.bin", { hash });
    assert.deepEqual(fs.readFileSync(file), payload);
    await cachedDownload(`${server.url}blob.bin`, "blob.bin", { hash });
    assert.equal(server.log.length, 1, "the second call is served from the cache");

    fs.rmSync(file);
    fs.writeFileSync(`${file}.part`, payload.subarray(0, 1_000_000));
    await cachedDownload(`${server.url}blob.bin`, "blob.bin", { hash });
    assert.equal(server.log[1].range, "bytes=1000000-", "resumed where the partial file ended");
    assert.deepEqual(fs.readFileSync(file), payload);

    await assert.rejects(cachedDownload(`${server.url}blob.bin`, "other.bin", { hash: "md5:0123" }), /md5 of the download is [0-9a-f]+, expected 0123; the file was removed/);
    assert.ok(!fs.existsSync(path.join(path.dirname(file), "other.bin.part")));
    await assert.rejects(cachedDownload(`${server.url}missing.bin`, "missing.bin", { offlineHint: "Use the bundled weights." }), /HTTP 404\. Use the bundled weights\./);
  } finally {
    await server.close();
  }
  await assert.rejects(cachedDownload("http://127.0.0.1:9/nothing.bin", "nothing.bin", { offlineHint: "Offline? Try X." }), /Cannot download .*Offline\? Try X\./);
});

test("flowers() downloads the archive, unpacks it and reads it as an image folder", async () => {
  const served = scratch("served-flowers");
  const source = await syntheticShapes({ classes: 5, perClass: 4, imageSize: 32, dir: path.join(scratch("flowers-source"), "set") });
  const staging = path.join(served, "flower_photos");
  const names = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];
  source.classes.forEach((cls, i) => fs.cpSync(path.join(source.dir, cls), path.join(staging, names[i]), { recursive: true }));
  const tar: typeof import("tar") = require("tar");
  await tar.c({ gzip: true, file: path.join(served, "flower_photos.tgz"), cwd: served }, ["flower_photos"]);
  const server = await serveFolder(served);
  process.env.INCEPTION_LAB_CACHE = scratch("flowers-cache");
  process.env.INCEPTION_LAB_FLOWERS_URL = `${server.url}flower_photos.tgz`;
  try {
    const data = await flowers({ minImagesPerClass: 4 });
    assert.deepEqual(data.classes, names);
    assert.equal(data.files().length, 20);
  } finally {
    delete process.env.INCEPTION_LAB_FLOWERS_URL;
    await server.close();
  }
});

test('weights: "imagenet" refuses a file that is not the official one, and says what to do offline', async () => {
  const served = scratch("served-weights");
  fs.writeFileSync(path.join(served, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"), "not the real weights");
  const server = await serveFolder(served);
  process.env.INCEPTION_LAB_CACHE = scratch("imagenet-cache");
  process.env.INCEPTION_LAB_WEIGHTS_URL = server.url;
  try {
    await assert.rejects(loadInceptionV3({ weights: "imagenet" }), /md5 of the download is .* expected bcbd6486424b2319ff4ef7d526e38f63/);
    process.env.INCEPTION_LAB_WEIGHTS_URL = "http://127.0.0.1:9/";
    await assert.rejects(loadInceptionV3({ weights: "imagenet" }), /Offline\? Use weights: "bundled"/);
  } finally {
    delete process.env.INCEPTION_LAB_WEIGHTS_URL;
    await server.close();
  }
});
