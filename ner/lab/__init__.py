"""Labs: small, self-contained experiments that show why the models are built the way they are.

``ner.lab.gradients`` (``ner lab gradients``): vanishing and exploding gradients through time, and
what gated cells and gradient clipping do about them.
"""
