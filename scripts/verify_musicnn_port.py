"""Check the PyTorch/ONNX port of musicnn against the original TensorFlow code (run once, by hand).

musicnn's own code needs TensorFlow, which this project never installs. To re-check the port:

    python3.11 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu==2.15.1
    pip download musicnn==0.1.0 --no-deps -d /tmp/musicnn && unzip -q /tmp/musicnn/*.whl -d /tmp/musicnn
    python scripts/verify_musicnn_port.py --wheel /tmp/musicnn/musicnn-0.1.0-py3-none-any.whl \\
        --tf-python /tmp/tfenv/bin/python --audio some_song.mp3

It feeds the same patches to both and prints the largest differences of the tags and of the
embedding (measured: 7.7e-7 and 4.3e-6 on a DEAM clip, with embedding values up to 2.2).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from music2emotion.audio import load_audio
from music2emotion.config import SAMPLE_RATE
from music2emotion.frontends import musicnn_patches
from music2emotion.training.musicnn import (
    MSD_MODEL,
    load_musicnn,
    read_wheel_checkpoint,
)

TF_SCRIPT = """
import sys; sys.path.insert(0, {root!r})
import numpy as np, tensorflow as tf
tf.compat.v1.disable_eager_execution()
from musicnn import models
x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
training = tf.compat.v1.placeholder(tf.bool)
with tf.name_scope('model'):
    y, *_, penultimate = models.define_model(x, training, {model!r}, 50)
sess = tf.compat.v1.Session()
tf.compat.v1.train.Saver().restore(sess, {ckpt!r})
tags, pen = sess.run([tf.nn.sigmoid(y), penultimate], {{x: np.load({inp!r}), training: False}})
np.savez({out!r}, tags=tags, pen=pen)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description="compare the musicnn port with TensorFlow")
    ap.add_argument("--wheel", required=True)
    ap.add_argument("--tf-python", required=True, help="a Python with tensorflow (2.15 works)")
    ap.add_argument("--audio", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        zipfile.ZipFile(args.wheel).extractall(root)
        patches = musicnn_patches(load_audio(args.audio), SAMPLE_RATE)
        np.save(root / "in.npy", patches)
        script = TF_SCRIPT.format(root=str(root), model=MSD_MODEL, ckpt=str(root / "musicnn" / MSD_MODEL) + "/",
                                  inp=str(root / "in.npy"), out=str(root / "out.npz"))
        subprocess.run([args.tf_python, "-c", script], check=True)
        ref = np.load(root / "out.npz")
        with torch.no_grad():
            tags, emb = load_musicnn(read_wheel_checkpoint(args.wheel))(torch.from_numpy(patches))
    print(f"max |tags diff| {np.abs(tags.numpy() - ref['tags']).max():.2e}, "
          f"max |embedding diff| {np.abs(emb.numpy() - ref['pen']).max():.2e} "
          f"(embedding up to {np.abs(ref['pen']).max():.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
