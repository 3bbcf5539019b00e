"""The seed's batch ONNX script: predict valence and arousal for audio files.

    python test.py [--model emotion_model_improved.onnx] PATH [PATH ...]

A thin wrapper over ``music2emotion predict`` (same options, same output) that runs the
bundled ``seed`` model, the seed's own CNN, unless ``--model`` names another one.
"""

import sys

from music2emotion.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--model" or a.startswith("--model=") for a in args):
        args = ["--model", "seed", *args]
    sys.exit(main(["predict", *args]))
