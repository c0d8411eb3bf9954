"""Export the trained model as a ``.skops`` file: the safe format for sharing a model with colleagues.

A joblib/pickle file runs whatever code it names when loaded, so only load those you trained yourself.
A ``.skops`` file stores the fitted objects as data; loading it instantiates only types on an explicit
allow-list (this project's transformers and the scikit-learn classes the pipeline is made of) and refuses
anything else. The model card travels inside the file.

    python -m pipeline.export --format skops                     # models/model.joblib -> models/model.skops
    python -m pipeline.predict --model colleague.skops "又被喝茶了"
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from pipeline.errors import ArgumentParser, UserError, cli_entry

log = logging.getLogger("export")

BUNDLE_FORMAT = "weibo-signals/skops/1"
# Types a shared model may contain beyond those skops trusts by default. Nothing else is loaded.
ALLOWED_TYPES = frozenset({
    "pipeline.text.Normalizer",
    "pipeline.segment.Segmenter",
    "pipeline.features.CharNgramCounter",
    "pipeline.features.FlooredL2Norm",
    "pipeline.features.WordNgramCounter",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.model_selection._split.StratifiedKFold",
})


def export_skops(model, output: str | Path) -> Path:
    """Write the model and its card into one ``.skops`` file (atomically)."""
    import skops.io as sio

    from pipeline import io

    output = Path(output)
    if output.suffix != ".skops":
        raise UserError(f"a skops export must end in .skops: {output}")
    with io.atomic_path(output) as tmp:
        sio.dump({"format": BUNDLE_FORMAT, "card": model.card, "pipeline": model.pipeline}, tmp)
    return output


def load_skops(path: str | Path):
    """Load a ``.skops`` model, refusing any type outside :data:`ALLOWED_TYPES`."""
    import skops.io as sio

    from pipeline.model import Model, _checked, check_versions

    path = Path(path)
    if not path.exists():
        raise UserError(f"no model at {path}")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise UserError(f"{path} is not a readable skops file ({err.__class__.__name__}): it may be truncated "
                        "or modified") from None
    refused = sorted(set(untrusted) - ALLOWED_TYPES)
    if refused:
        raise UserError(f"{path} contains types this project does not trust, refusing to load: {', '.join(refused)}")
    try:
        bundle = sio.load(path, trusted=sorted(untrusted))
    except Exception as err:  # skops raises many kinds of errors for damaged files
        raise UserError(f"{path} cannot be loaded ({err.__class__.__name__}): it may be truncated or "
                        "modified") from None
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise UserError(f"{path} is not a model exported by this project")
    check_versions(bundle["card"].get("versions", {}), str(path))
    return _checked(Model(pipeline=bundle["pipeline"], card=bundle["card"], source=str(path)))


@cli_entry
def cli(argv: list[str] | None = None) -> int:
    from pipeline.model import load_model

    parser = ArgumentParser(prog="python -m pipeline.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=("skops",), default="skops", help="export format (default: skops)")
    parser.add_argument("-m", "--model", help="the model to export (default: models/model.joblib)")
    parser.add_argument("-o", "--output", help="the file to write (default: the model's name with .skops)")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    output = Path(args.output) if args.output else Path(model.source).with_suffix(".skops")
    export_skops(model, output)
    log.info("wrote %s (%.1f MB); load it with predict --model %s", output, output.stat().st_size / 1e6, output)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
