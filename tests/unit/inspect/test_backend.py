import sys

import numpy as np
import pytest

from magspect.inspect.backend import ModelError, Segmenter, choose_providers, sha256_file, tile_origins


def test_tile_origins_cover_with_overlap():
    for length, tile, overlap in [(64, 64, 16), (100, 64, 16), (1000, 256, 32), (257, 256, 32)]:
        starts = tile_origins(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == max(length, tile)
        for a, b in zip(starts, starts[1:], strict=False):
            assert a + tile - b >= overlap


def test_tiled_matches_untiled(make_tiny_onnx):
    """Tiles stitched at mid-overlap give the same logits as one pass: no seams, thin lines survive."""
    small = make_tiny_onnx("tiled.onnx", tile=64, overlap=16)
    big = make_tiny_onnx("whole.onnx", tile=512, overlap=16)
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (200, 152), dtype=np.uint8)
    img[100, :] = 255  # a one-pixel line crossing tile boundaries
    tiled = Segmenter(small, threads=1).logits([img])[0]
    whole = Segmenter(big, threads=1).logits([img])[0]
    assert tiled.shape == whole.shape == (5, 200, 152)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_scaling_by_dtype_and_colour_conversion(tiny_onnx):
    seg = Segmenter(tiny_onnx, threads=1)
    g8 = np.full((64, 64), 128, np.uint8)
    g16 = (g8.astype(np.uint16) * 257)
    np.testing.assert_allclose(seg.to_input(g8), seg.to_input(g16), atol=1e-6)
    bgr = np.dstack([g8, g8, g8])
    np.testing.assert_allclose(seg.to_input(bgr), seg.to_input(g8), atol=1e-6)
    assert seg.to_input(g8).shape == (1, 64, 64)
    with pytest.raises(ValueError, match="no input scaling for dtype 'float32'"):
        seg.to_input(g8.astype(np.float32))


def test_predict_batches_and_odd_sizes(tiny_onnx):
    seg = Segmenter(tiny_onnx, threads=1)
    imgs = [np.random.default_rng(i).integers(0, 255, (50 + i, 61), dtype=np.uint8) for i in range(3)]
    out = seg.predict(imgs)
    for im, s in zip(imgs, out, strict=True):
        assert s.class_mask.shape == im.shape and s.class_mask.dtype == np.uint8
        assert ((s.confidence > 0.2 - 1e-6) & (s.confidence <= 1 + 1e-6)).all()
    single = seg.predict([imgs[1]])[0]
    np.testing.assert_array_equal(single.class_mask, out[1].class_mask)


def test_checksum_mismatch_and_missing_file(tiny_onnx, tmp_path):
    assert Segmenter(tiny_onnx, expected_sha=sha256_file(tiny_onnx), warmup=False).sha256 == sha256_file(tiny_onnx)
    with pytest.raises(ModelError, match="does not match"):
        Segmenter(tiny_onnx, expected_sha="0" * 64)
    (tmp_path / "SHA256SUMS").write_text(f"{'1' * 64}  {tiny_onnx.name}\n")
    with pytest.raises(ModelError, match="corrupt or was replaced"):
        Segmenter(tiny_onnx)
    with pytest.raises(ModelError, match="does not exist"):
        Segmenter(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        Segmenter(bad)


def test_providers_explicit():
    assert choose_providers()[-1] == "CPUExecutionProvider"
    assert choose_providers(["cpu"]) == ["CPUExecutionProvider"]
    if "TensorrtExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        with pytest.raises(ModelError, match="'tensorrt' is not installed"):
            choose_providers(["tensorrt"])


def test_runtime_backend_does_not_import_torch():
    import subprocess

    code = "import sys, magspect.inspect, magspect.inspect.backend; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_softmax_argmax_matches_the_plain_numpy_definition():
    from magspect.inspect.backend import _softmax_argmax

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (5, 37, 29)).astype(np.float32)
    logits[:, 0, 0] = 1.0  # a five-way tie goes to class 0, as argmax does
    cls, conf = _softmax_argmax(logits)
    e = np.exp(logits - logits.max(0))
    np.testing.assert_array_equal(cls, logits.argmax(0))
    np.testing.assert_allclose(conf, (e / e.sum(0)).max(0), rtol=1e-5)
    assert cls.dtype == np.uint8 and conf.dtype == np.float32 and cls[0, 0] == 0


def test_fit_roi_grows_to_the_model_multiple_inside_the_image():
    from magspect.inspect.backend import fit_roi

    for roi, shape in [((10, 20, 50, 45), (100, 120)), ((0, 0, 5, 5), (100, 120)), ((100, 90, 120, 100), (100, 120))]:
        x0, y0, x1, y1 = fit_roi(roi, shape, 32)
        assert (x1 - x0) % 32 == 0 and (y1 - y0) % 32 == 0
        assert x0 <= roi[0] and y0 <= roi[1] and x1 >= roi[2] and y1 >= roi[3]  # nothing of the box lost
        assert 0 <= x0 and 0 <= y0 and x1 <= shape[1] and y1 <= shape[0]
    assert fit_roi((3, 3, 90, 90), (100, 120), 64) == (0, 0, 120, 100)  # larger than fits: the whole image


def test_predict_on_a_roi_equals_the_whole_image_inside_it(tiny_onnx):
    """The model run on a box gives the same classes inside it (away from the box's edge, where
    the context differs) and background with confidence 1 outside."""
    seg = Segmenter(tiny_onnx, threads=1)
    img = np.random.default_rng(5).integers(0, 255, (120, 160), dtype=np.uint8)
    whole = seg.predict([img])[0]
    (boxed,) = seg.predict([img], rois=[(40, 30, 100, 90)])
    inner = (slice(34, 86), slice(44, 96))  # 4 px in from the box: the 5x5 kernel sees the same pixels
    np.testing.assert_array_equal(boxed.class_mask[inner], whole.class_mask[inner])
    np.testing.assert_allclose(boxed.confidence[inner], whole.confidence[inner], rtol=1e-5)
    assert (boxed.class_mask[:, :30] == 0).all() and (boxed.confidence[:, :30] == 1).all()
    (full,) = seg.predict([img], rois=[None])
    np.testing.assert_array_equal(full.class_mask, whole.class_mask)
    with pytest.raises(ValueError, match="1 rois for 2 images"):
        seg.predict([img, img], rois=[None])


def test_sessions_can_run_without_spinning_threads(tiny_onnx):
    key = "session.intra_op.allow_spinning"
    sleeping, spinning = Segmenter(tiny_onnx, threads=2, spin=False), Segmenter(tiny_onnx, threads=2)
    assert sleeping.session.get_session_options().get_session_config_entry(key) == "0"
    with pytest.raises(RuntimeError, match="does not have configuration"):  # onnxruntime's default: spin
        spinning.session.get_session_options().get_session_config_entry(key)
    img = np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8)
    np.testing.assert_array_equal(sleeping.predict([img])[0].class_mask, spinning.predict([img])[0].class_mask)


def test_confidence_on_defect_pixels_only_where_asked():
    """The Inspector reads the class probability on defect pixels only: computed there, the same
    as the full map; 1.0 elsewhere; the classes identical."""
    from magspect.inspect.backend import _softmax_argmax

    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (5, 40, 33)).astype(np.float32)
    cls, conf = _softmax_argmax(logits)
    cls_d, conf_d = _softmax_argmax(logits, only=[2, 3, 4])
    defect = cls >= 2
    assert defect.any() and (~defect).any()
    np.testing.assert_array_equal(cls_d, cls)
    np.testing.assert_allclose(conf_d[defect], conf[defect], rtol=1e-6)
    assert (conf_d[~defect] == 1.0).all()
    none = _softmax_argmax(np.stack([np.ones((4, 4), np.float32) * 5, *np.zeros((4, 4, 4), np.float32)]), only=[2])
    assert (none[1] == 1.0).all()  # no defect pixel: nothing to compute


def test_segmenter_defect_confidence_matches_the_full_map(tiny_onnx):
    img = np.random.default_rng(3).integers(0, 255, (64, 96), dtype=np.uint8)
    full = Segmenter(tiny_onnx, threads=1).predict([img])[0]
    lean = Segmenter(tiny_onnx, threads=1, confidence="defects").predict([img])[0]
    np.testing.assert_array_equal(lean.class_mask, full.class_mask)
    defect = full.class_mask >= 2
    assert defect.any() and (~defect).any()
    np.testing.assert_allclose(lean.confidence[defect], full.confidence[defect], rtol=1e-6)
    assert (lean.confidence[~defect] == 1.0).all()
    with pytest.raises(ValueError, match="confidence must be"):
        Segmenter(tiny_onnx, confidence="some")


@pytest.mark.parametrize("tta,flips", [("hflip", [(1,)]), ("flips", [(1,), (0,), (0, 1)])])
def test_tta_averages_the_logits_of_mirrored_views(tiny_onnx, tta, flips):
    """Test-time augmentation: the logits of the view and of its mirror images (mirrored back),
    averaged; on the bundled stride-2 model too, whose half-size logits are mirrored before the
    upsampling."""
    from magspect.inspect import bundled_model_path

    img = np.random.default_rng(7).integers(0, 256, (64, 96), dtype=np.uint8)
    models = [tiny_onnx] + ([bundled_model_path()] if bundled_model_path().is_file() else [])
    for path in models:
        plain, aug = Segmenter(path, threads=1), Segmenter(path, threads=1, tta=tta)
        want = plain.logits([img])[0].copy()
        for axes in flips:
            mirrored = plain.logits([np.ascontiguousarray(np.flip(img, axes))])[0]
            want += np.flip(mirrored, [a + 1 for a in axes])
        want /= 1 + len(flips)
        got = aug.logits([img])[0]
        np.testing.assert_allclose(got, want, atol=1e-4)
        assert not np.allclose(got, plain.logits([img])[0], atol=1e-3)  # neither model is mirror-symmetric
        assert aug.name == f"{plain.name}+tta-{tta}"
    with pytest.raises(ValueError, match="tta must be one of"):
        Segmenter(tiny_onnx, tta="rot90")
