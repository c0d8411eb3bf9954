"""weibo-signals: find declared candidacies and police warnings in Chinese microblog posts.

    from pipeline import load_model
    model = load_model()                      # models/model.npz, verified against its card
    model.predict(["我决定参选本区人大代表", "周末约了老同学去茶馆喝茶"])   # a pandas DataFrame
"""

__version__ = "0.1.0"
__all__ = ["load_model", "__version__"]


def load_model(path=None):
    """Load and verify a trained model (see :func:`pipeline.model.load_model`)."""
    from pipeline.model_file import load_model as _load

    return _load(path)
