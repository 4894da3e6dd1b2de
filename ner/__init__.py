"""Named-entity recognition with recurrent networks: data, models, bundles and prediction."""

__version__ = "0.1.0"
