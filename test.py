"""The seed's batch ONNX script: predict valence and arousal for audio files.

    python test.py [--model emotion_model_improved.onnx] PATH [PATH ...]

A thin wrapper over ``music2emotion predict`` (same options, same output).
"""

import sys

from music2emotion.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
