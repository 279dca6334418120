"""Batching when behind: model calls that arrive while the model runs go together in the next batch,
each caller gets its own results back, and an error reaches every caller of that batch."""

import threading
import time

import numpy as np
import pytest

from magspect.inspect.batching import BatchingSegmenter


class SlowModel:
    manifest, name, sha256, provider = "m", "slow", "0" * 64, "cpu"

    def __init__(self, fail=False):
        self.runs: list[int] = []
        self.fail = fail

    def predict(self, images, batch_size=8, rois=None):
        self.runs.append(len(images))
        time.sleep(0.15)
        if self.fail:
            raise RuntimeError("model failed")
        return [int(im[0, 0]) for im in images]  # each image's marker value


def _calls(seg, n_threads, per_call=2):
    out, errs = {}, {}

    def worker(k):
        ims = [np.full((4, 4), 10 * k + j, np.uint8) for j in range(per_call)]
        try:
            out[k] = seg.predict(ims)
        except Exception as exc:  # noqa: BLE001
            errs[k] = exc

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    threads[0].start()
    time.sleep(0.03)  # the first call is running the model: the rest arrive behind it
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(10)
    return out, errs


def test_calls_arriving_while_the_model_runs_are_batched():
    model = SlowModel()
    seg = BatchingSegmenter(model, max_images=8)
    out, errs = _calls(seg, 4)
    assert not errs
    assert model.runs == [2, 6]  # alone while nothing waited, then the three waiting calls together
    for k, res in out.items():
        assert res == [10 * k, 10 * k + 1]  # each caller gets its own images' results, in order
    assert seg.name == "slow" and seg.sha256 == "0" * 64  # the wrapped model's identity


def test_batches_are_capped():
    model = SlowModel()
    out, _ = _calls(BatchingSegmenter(model, max_images=4), 5)
    assert max(model.runs) <= 4 and sum(model.runs) == 10 and len(out) == 5


def test_a_model_error_reaches_every_caller():
    out, errs = _calls(BatchingSegmenter(SlowModel(fail=True)), 3)
    assert not out and len(errs) == 3 and all(isinstance(e, RuntimeError) for e in errs.values())


def test_max_images_validated():
    with pytest.raises(ValueError):
        BatchingSegmenter(SlowModel(), max_images=0)


def test_each_call_gets_its_share_of_the_batch_time():
    seg = BatchingSegmenter(SlowModel(), max_images=8)
    out, seconds = seg.predict_timed([np.full((4, 4), 7, np.uint8)])
    assert out == [7] and 0.14 <= seconds < 5  # the model's 0.15 s run, alone
    shares = {}

    def worker(k, n):
        shares[k] = seg.predict_timed([np.zeros((4, 4), np.uint8)] * n)[1]

    first = threading.Thread(target=worker, args=("first", 1))
    first.start()
    time.sleep(0.03)
    late = [threading.Thread(target=worker, args=(k, n)) for k, n in (("one", 1), ("three", 3))]
    for t in late:
        t.start()
    for t in (first, *late):
        t.join(10)
    # "one" and "three" ran together (4 images): a quarter and three quarters of that run
    assert shares["three"] == pytest.approx(3 * shares["one"], rel=1e-6)
    assert 0.14 <= shares["one"] + shares["three"] < 5
