"""The model file is data: damaged, edited or foreign files are refused in one line, loading runs no code and
imports no scikit-learn, SciPy or pandas, and the vocabulary gives away no rare n-gram of the training posts."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from pipeline import files, model_file, ngrams
from pipeline.errors import UserError
from pipeline.segmenter import Doc
from tests.conftest import ROOT


def refused(path, *fragments):
    with pytest.raises(UserError) as caught:
        model_file.load_model(path)
    message = str(caught.value)
    assert "\n" not in message and all(f in message for f in fragments), message


def rewrite(path, change):
    """Rewrite the model file's arrays through ``change(arrays)`` and seal the card to the new file, so that only
    what ``change`` did can be refused."""
    with np.load(path, allow_pickle=True) as archive:
        arrays = {name: archive[name] for name in archive.files}
    change(arrays)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    card_path = model_file.card_path(path)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["model"]["sha256"] = files.sha256_file(path)
    files.write_json(model_file.sealed(card), card_path)


def test_a_flipped_byte_is_refused(model_copy):
    blob = bytearray(model_copy.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    model_copy.write_bytes(bytes(blob))
    refused(model_copy, "does not match its card")


def test_a_truncated_file_is_refused(model_copy):
    model_copy.write_bytes(model_copy.read_bytes()[:1000])
    refused(model_copy, "does not match its card")


def test_an_edited_card_is_refused(model_copy):
    card_path = model_file.card_path(model_copy)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["thresholds"]["police_warning"] = 0.01
    card_path.write_text(json.dumps(card), encoding="utf-8")
    refused(model_copy, "was edited after training")


def test_a_missing_card_is_refused(model_copy):
    model_file.card_path(model_copy).unlink()
    refused(model_copy, "model card", "is missing")


def test_another_format_version_is_refused(model_copy):
    def version_1(arrays):  # the format before norm_power: read by this version, it would score wrongly
        meta = json.loads(arrays["meta"].tobytes())
        arrays["meta"] = np.frombuffer(json.dumps({**meta, "version": 1}).encode(), dtype=np.uint8)

    rewrite(model_copy, version_1)
    refused(model_copy, "format version 1", f"reads formats 2–{model_file.FORMAT_VERSION}")


def test_a_pickled_object_inside_is_refused_unread(model_copy):
    rewrite(model_copy, lambda arrays: arrays.update(weights=np.array([object()], dtype=object)))
    refused(model_copy, "not a readable model file")


def test_arrays_that_do_not_fit_together_are_refused(model_copy):
    rewrite(model_copy, lambda arrays: arrays.update(word_idf=arrays["word_idf"][:-1]))
    refused(model_copy, "damaged")


def test_a_file_of_another_kind_is_refused(model_copy):
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(b'{"format": "something-else"}', dtype=np.uint8))
    model_copy.write_bytes(buffer.getvalue())
    rewrite(model_copy, lambda arrays: None)
    refused(model_copy, "not a model file of this project")


@pytest.mark.parametrize("damage", ["flipped byte", "edited card"])
def test_predict_refuses_a_damaged_model_in_one_line(model_copy, damage, cli):
    if damage == "flipped byte":
        blob = bytearray(model_copy.read_bytes())
        blob[-100] ^= 0x01
        model_copy.write_bytes(bytes(blob))
    else:
        card_path = model_file.card_path(model_copy)
        card_path.write_text(card_path.read_text(encoding="utf-8").replace('"name": "weibo-signals"',
                                                                            '"name": "mine"'), encoding="utf-8")
    result = cli("-m", "pipeline.predict", "--model", str(model_copy), "我被约谈了")
    assert result.returncode == 2 and result.stdout == b""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines


def test_loading_and_scoring_import_no_scikit_learn_scipy_or_pandas(tiny_model_path):
    code = ("import sys; from pipeline.model_file import load_model; "
            f"m = load_model({str(tiny_model_path)!r}); m.score(['又被请喝茶了'], explain=2); "
            "print(sorted({n.split('.')[0] for n in sys.modules} & {'sklearn', 'scipy', 'pandas', 'joblib'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_no_vocabulary_entry_is_rarer_than_min_df_in_the_training_posts(real_model, project_params):
    """Names and fragments of single posts (ours or the background pool's) must not be recoverable from the file:
    every word and character n-gram it keeps occurs in at least ``features.min_df`` training posts."""
    params = project_params
    folder = params.root_path(params.paths.segmented)
    tables = [files.read_table(folder / f"{name}.parquet") for name in ("labeled", "background")]
    posts = [Doc(norm, tuple(tokens)) for table in tables
             for norm, tokens in table.loc[table["split"] == "train", ["norm", "tokens"]].itertuples(index=False)]
    vectorizer = real_model.vectorizer
    if vectorizer.scope is not None:  # what the counters saw: words in scope marked
        posts = vectorizer.scope.transform(posts)
    token_id = {token: i + 1 for i, token in enumerate(vectorizer.word_tokens.tolist())}.get
    blocks = [(vectorizer.chars, ngrams.char_symbols([p.text for p in posts])),
              (vectorizer.words, ngrams.word_symbols([p.tokens for p in posts], token_id))]
    assert params.features.min_df >= 2
    for block, symbols in blocks:
        codes, df = ngrams.document_frequency(*ngrams.ngram_codes(*symbols, block.ngram_range))
        seen = dict(zip(codes.tolist(), df.tolist(), strict=True))
        rarest = min(seen.get(code, 0) for code in block.vocabulary.tolist())
        assert rarest >= params.features.min_df


def test_a_format_2_file_without_concepts_still_loads_and_scores(model_copy, tiny_model):
    n_concepts = tiny_model.vectorizer.concepts.width

    def version_2(arrays):  # the format before concepts: no concept block, nothing else changed
        meta = json.loads(arrays["meta"].tobytes())
        meta["vectorizer"].pop("concepts")
        meta["vectorizer"].pop("concept_pairs")
        arrays["meta"] = np.frombuffer(json.dumps({**meta, "version": 2}).encode(), dtype=np.uint8)
        arrays["weights"] = np.ascontiguousarray(arrays["weights"][:, :-n_concepts])
        del arrays["concept_idf"]

    rewrite(model_copy, version_2)
    old = model_file.load_model(model_copy)
    assert old.vectorizer.concepts is None
    no_concept = ["今天天气不错，出去走走", "周末去看了场电影"]  # vectors without concepts are the same
    np.testing.assert_array_equal(old.predict_proba(no_concept), tiny_model.predict_proba(no_concept))


def test_a_format_3_file_without_concept_pairs_still_loads_and_scores(model_copy, tiny_model):
    concepts = tiny_model.vectorizer.concepts
    assert concepts.pairs
    n_pairs = concepts.width - len(concepts.concepts)

    def version_3(arrays):  # the format before concept pairs: no pair columns, nothing else changed
        meta = json.loads(arrays["meta"].tobytes())
        meta["vectorizer"].pop("concept_pairs")
        arrays["meta"] = np.frombuffer(json.dumps({**meta, "version": 3}).encode(), dtype=np.uint8)
        arrays["weights"] = np.ascontiguousarray(arrays["weights"][:, :-n_pairs])
        arrays["concept_idf"] = arrays["concept_idf"][:-n_pairs]

    rewrite(model_copy, version_3)
    old = model_file.load_model(model_copy)
    assert not old.vectorizer.concepts.pairs and old.vectorizer.n_features == tiny_model.vectorizer.n_features - n_pairs
    one_concept = ["今天天气不错，出去走走", "派出所门口的树开花了"]  # at most one concept: no pair, same vectors
    np.testing.assert_array_equal(old.predict_proba(one_concept), tiny_model.predict_proba(one_concept))


def test_concept_weights_that_do_not_fit_the_concepts_are_refused(model_copy):
    rewrite(model_copy, lambda arrays: arrays.update(concept_idf=arrays["concept_idf"][:-1]))
    refused(model_copy, "damaged", "concept_idf")
