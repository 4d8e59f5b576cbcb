"""Tests of the image corruptions and the robustness accuracy table."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from fmnist.evaluation.robustness import (
    CORRUPTIONS,
    corrupt,
    gaussian_blur,
    robustness_accuracy,
    rotate,
    shift,
)


def centre_of_mass(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    weights = image.astype(np.float64)
    ys, xs = np.indices(image.shape)
    total = float(weights.sum())
    return np.array([(ys * weights).sum() / total, (xs * weights).sum() / total])


@pytest.mark.parametrize("name", CORRUPTIONS)
@pytest.mark.parametrize("severity", [1, 3])
def test_corruption_keeps_shape_and_dtype_and_changes_the_image(
    blob_images: npt.NDArray[np.uint8], name: str, severity: int
) -> None:
    before = blob_images.copy()
    out = corrupt(blob_images, name, severity=severity, seed=7)
    assert out.shape == blob_images.shape
    assert out.dtype == np.uint8
    assert not np.array_equal(out, blob_images)
    np.testing.assert_array_equal(blob_images, before)  # input untouched
    np.testing.assert_array_equal(out, corrupt(blob_images, name, severity=severity, seed=7))


def test_noise_depends_on_the_seed(blob_images: npt.NDArray[np.uint8]) -> None:
    a = corrupt(blob_images, "gaussian_noise", seed=1)
    b = corrupt(blob_images, "gaussian_noise", seed=2)
    assert not np.array_equal(a, b)


def test_higher_severity_changes_more(blob_images: npt.NDArray[np.uint8]) -> None:
    for name in ("gaussian_noise", "blur", "brightness", "contrast"):
        diffs = [
            np.abs(corrupt(blob_images, name, s).astype(int) - blob_images).mean()
            for s in (1, 2, 3)
        ]
        assert diffs[0] < diffs[1] < diffs[2], name


@pytest.mark.parametrize("severity", [1, 2, 3])
def test_shift_moves_the_centre_of_mass(blob_images: npt.NDArray[np.uint8], severity: int) -> None:
    pixels = severity + 1
    out = corrupt(blob_images, "shift", severity=severity, seed=3)
    for before, after in zip(blob_images, out, strict=True):
        assert after.sum() == before.sum()  # the blob stays inside the frame
        move = centre_of_mass(after) - centre_of_mass(before)
        assert sorted(np.abs(move).round(9).tolist()) == [0.0, pixels]


def test_shift_fills_zeros_and_drops_what_leaves_the_frame() -> None:
    image = np.arange(1, 17, dtype=np.uint8).reshape(1, 4, 4)
    out = shift(image, 1, -2)[0]
    expected = np.zeros((4, 4), dtype=np.uint8)
    expected[1:, :2] = image[0, :3, 2:]
    np.testing.assert_array_equal(out, expected)


def test_rotation_by_zero_is_identity_and_by_90_turns_counter_clockwise(
    blob_images: npt.NDArray[np.uint8],
) -> None:
    np.testing.assert_array_equal(rotate(blob_images, 0.0), blob_images)
    dot = np.zeros((1, 5, 5), dtype=np.uint8)
    dot[0, 0, 2] = 200  # top centre
    turned = rotate(dot, 90.0)[0]
    assert turned[2, 0] == 200  # left centre
    assert turned.sum() == 200


@pytest.mark.parametrize(("degrees", "turns"), [(90.0, 1), (180.0, 2), (-90.0, -1)])
def test_rotation_by_right_angles_matches_rot90(degrees: float, turns: int) -> None:
    image = np.random.default_rng(0).integers(0, 256, size=(28, 28), dtype=np.uint8)
    turned = rotate(image[None], degrees)[0]
    np.testing.assert_allclose(turned, np.rot90(image, turns), atol=1)


def test_rotation_angles_apply_per_image(blob_images: npt.NDArray[np.uint8]) -> None:
    angles = np.array([0.0, 90.0, -90.0, 180.0])
    out = rotate(blob_images, angles)
    for image, angle, turned in zip(blob_images, angles, out, strict=True):
        np.testing.assert_allclose(turned, np.rot90(image, int(angle) // 90), atol=1)


def test_rotation_keeps_the_centre_of_mass_near_the_image_centre() -> None:
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, 8:20, 8:20] = 255
    out = corrupt(image, "rotation", severity=3)
    np.testing.assert_allclose(centre_of_mass(out[0]), [13.5, 13.5], atol=0.05)
    assert abs(int(out.astype(int).sum()) - int(image.astype(int).sum())) < 0.02 * image.sum()


def test_blur_preserves_mass_away_from_edges() -> None:
    image = np.zeros((1, 15, 15), dtype=np.uint8)
    image[0, 7, 7] = 255
    out = gaussian_blur(image, 1.0)[0]
    assert out[7, 7] < 255
    assert out[7, 7] == out.max()
    assert abs(int(out.astype(int).sum()) - 255) <= 10
    np.testing.assert_array_equal(out, out.T)  # isotropic


@pytest.mark.parametrize("sigma", [0.6, 1.0, 1.5])
def test_blur_preserves_the_mean(blob_images: npt.NDArray[np.uint8], sigma: float) -> None:
    out = gaussian_blur(blob_images, sigma)
    assert not np.array_equal(out, blob_images)
    np.testing.assert_allclose(out.mean(axis=(1, 2)), blob_images.mean(axis=(1, 2)), atol=0.05)


def test_blur_replicates_the_edges() -> None:
    flat = np.full((2, 28, 28), 100, dtype=np.uint8)  # a zero border would darken the edges
    np.testing.assert_array_equal(gaussian_blur(flat, 1.5), flat)


def test_blur_handles_more_images_than_one_opencv_call_takes() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(300, 12, 12), dtype=np.uint8)
    out = gaussian_blur(images, 1.0)
    for i in (0, 127, 128, 299):
        np.testing.assert_array_equal(out[i], gaussian_blur(images[i : i + 1], 1.0)[0])


def test_unknown_corruption_lists_valid_names(blob_images: npt.NDArray[np.uint8]) -> None:
    with pytest.raises(ValueError, match="valid names: gaussian_noise, blur"):
        corrupt(blob_images, "fog")


@pytest.mark.parametrize("severity", [0, 4])
def test_bad_severity(blob_images: npt.NDArray[np.uint8], severity: int) -> None:
    with pytest.raises(ValueError, match="severity"):
        corrupt(blob_images, "blur", severity=severity)


def test_non_uint8_images_are_rejected() -> None:
    with pytest.raises(ValueError, match="uint8"):
        corrupt(np.zeros((1, 28, 28), dtype=np.float32), "blur")


def test_robustness_accuracy(blob_images: npt.NDArray[np.uint8]) -> None:
    labels = np.array([0, 1, 0, 1])

    def bright_is_one(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
        # Class 1 when the image is bright overall: clean images all look like class 0.
        means: npt.NDArray[np.float64] = images.mean(axis=(1, 2))
        return (means > 40).astype(np.int64)

    result = robustness_accuracy(bright_is_one, blob_images, labels, severity=3)
    assert list(result) == ["clean", *CORRUPTIONS]
    assert result["clean"] == 0.5
    assert result["brightness"] == 0.5  # +80 makes everything "class 1"
    assert all(0.0 <= v <= 1.0 for v in result.values())


def test_robustness_accuracy_checks_predict_output(blob_images: npt.NDArray[np.uint8]) -> None:
    with pytest.raises(ValueError, match="predict returned shape"):
        robustness_accuracy(lambda x: np.zeros(1), blob_images, np.zeros(4, dtype=int))
