"""Training and evaluation: the ``[train]`` and ``[ml]`` side of music2emotion.

Everything here builds on the inference core (it computes exactly the features inference
computes) and nothing in the core imports it:

- :mod:`.data`: DEAM's labels, the songs with audio, splits and folds, the CNN feature cache;
- :mod:`.clips`: per-clip descriptors and tagger outputs for the regressors, cached;
- :mod:`.cnn`, :mod:`.train`: the seed CNN and its training (PyTorch);
- :mod:`.export`: ONNX files with the model file's metadata (every exporter saves through it);
- :mod:`.metrics`, :mod:`.evaluate`: metrics, baselines, k-fold cross-validation, reports;
- :mod:`.regressors`, :mod:`.recipe`: the regressors and the fusion recipe that made the
  bundled ``accurate`` and ``fast`` models;
- :mod:`.musicnn`: the pretrained musicnn taggers ported from TensorFlow to ONNX;
- :mod:`.plots`: training curves and scatter plots.
"""
