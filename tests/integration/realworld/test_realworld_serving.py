"""Serving routes photos to the photo model, over real HTTP.

A 28x28 Fashion-MNIST image takes the fashion-mnist path (the champion answers); an uploaded
photo takes the photo path (``fmnist-photos@champion`` answers, with its calibrated threshold);
``?model=`` overrides both; without a registered photo model photos fall back to the champion
and the response says so.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app_server import running
from fmnist.config import Settings
from fmnist.data.snapshot import load_snapshot
from fmnist.imaging.model_input import png_bytes
from fmnist.platform.storage import FsspecStorage

from .conftest import PhotoHome


def serving(base: Settings, **options: Any) -> Settings:
    """``base`` with test serving options: no polling, no access log, no gc freeze."""
    values = {"reload_interval_s": 0.0, "access_log": False, "gc_freeze": False, **options}
    return base.model_copy(update={"serving": base.serving.model_copy(update=values)})


@pytest.fixture(scope="module")
def client(photo_home: PhotoHome) -> Iterator[httpx.Client]:
    """A client of a server with the default settings (photo model fmnist-photos@champion)."""
    with (
        running(serving(photo_home.settings)) as url,
        httpx.Client(base_url=url, trust_env=False, timeout=60) as http,
    ):
        yield http


@pytest.fixture(scope="module")
def fashion_png(photo_home: PhotoHome) -> bytes:
    """A Fashion-MNIST test image as a 28x28 PNG."""
    snapshot = load_snapshot(FsspecStorage(photo_home.settings.resolved_lake_url), None)
    return png_bytes(snapshot.split("test")[0][0])


@pytest.fixture(scope="module")
def photo_jpeg(photo_home: PhotoHome) -> bytes:
    """A real photo of trousers."""
    return sorted((photo_home.folder / "pants").glob("*.jpg"))[0].read_bytes()


def versions(home: PhotoHome) -> tuple[int, int]:
    """(Fashion-MNIST champion version, photo model version)."""
    assert home.adaptation.version is not None
    return home.tiny.versions[0], home.adaptation.version.version


def test_a_28x28_image_takes_the_fashion_mnist_path(
    client: httpx.Client, fashion_png: bytes, photo_home: PhotoHome
) -> None:
    response = client.post("/v1/predict", files={"file": ("x.png", fashion_png, "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["path"] == "fashion-mnist" and body["fallback"] is None
    assert (body["model_name"], body["model_version"]) == (
        "fmnist-classifier",
        versions(photo_home)[0],
    )
    prediction = body["predictions"][0]
    assert prediction["path"] == "fashion-mnist"
    assert prediction["model_name"] == "fmnist-classifier"
    assert prediction["preprocessing"]["mode"] == "fashion_mnist"


def test_a_photo_takes_the_photo_path_and_the_photo_model(
    client: httpx.Client, photo_jpeg: bytes, photo_home: PhotoHome
) -> None:
    photo_version = versions(photo_home)[1]
    for request in (
        {"files": {"file": ("pants.jpg", photo_jpeg, "image/jpeg")}},
        {"json": {"instances": [{"b64": base64.b64encode(photo_jpeg).decode()}]}},
    ):
        response = client.post("/v1/predict", **request)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["path"] == "photo" and body["fallback"] is None
        assert (body["model_name"], body["model_version"]) == ("fmnist-photos", photo_version)
        assert response.headers["X-Model-Version"] == str(photo_version)
        prediction = body["predictions"][0]
        assert prediction["path"] == "photo" and prediction["model_name"] == "fmnist-photos"
        assert prediction["preprocessing"]["segmentation"] == "grabcut"
        # The photo model's calibrated floor decides "low confidence", not serving's 0.5.
        calibration = photo_home.adaptation.adapted.calibration
        assert calibration is not None
        low = prediction["confidence"] < calibration.min_confidence
        assert low == any(r.startswith("low confidence") for r in prediction["reasons"])


def test_model_query_overrides_the_path(
    client: httpx.Client, photo_jpeg: bytes, fashion_png: bytes, photo_home: PhotoHome
) -> None:
    champion, photo_version = versions(photo_home)
    photo = client.post(
        "/v1/predict?model=champion", files={"file": ("p.jpg", photo_jpeg, "image/jpeg")}
    ).json()
    assert photo["path"] == "photo"
    assert (photo["model_name"], photo["model_version"]) == ("fmnist-classifier", champion)
    small = client.post(
        "/v1/predict?model=fmnist-photos", files={"file": ("x.png", fashion_png, "image/png")}
    ).json()
    assert small["path"] == "fashion-mnist"
    assert (small["model_name"], small["model_version"]) == ("fmnist-photos", photo_version)


def test_a_batch_mixing_both_paths_names_the_model_of_each(
    client: httpx.Client, photo_jpeg: bytes, fashion_png: bytes, photo_home: PhotoHome
) -> None:
    champion, photo_version = versions(photo_home)
    instances = [
        {"b64": base64.b64encode(fashion_png).decode()},
        {"b64": base64.b64encode(photo_jpeg).decode()},
        [[0] * 28 for _ in range(28)],
    ]
    response = client.post("/v1/predict/batch", json={"instances": instances})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["path"] == "mixed"
    assert (body["model_name"], body["model_version"]) == ("fmnist-classifier", champion)
    answered = [(p["path"], p["model_name"], p["model_version"]) for p in body["predictions"]]
    assert answered == [
        ("fashion-mnist", "fmnist-classifier", champion),
        ("photo", "fmnist-photos", photo_version),
        ("fashion-mnist", "fmnist-classifier", champion),
    ]


def test_models_lists_the_photo_model(client: httpx.Client, photo_home: PhotoHome) -> None:
    body = client.get("/v1/models").json()
    assert body["photo_model"]["ref"] == "fmnist-photos@champion"
    served = body["photo_model"]["served"]
    assert served["name"] == "fmnist-photos"
    assert served["version"] == versions(photo_home)[1]
    assert served["min_confidence"] is not None


@pytest.mark.parametrize("photo_model", ["fmnist-missing@champion", None])
def test_without_a_photo_model_photos_fall_back_to_the_champion(
    photo_home: PhotoHome, photo_jpeg: bytes, photo_model: str | None
) -> None:
    settings = serving(photo_home.settings, photo_model=photo_model)
    with (
        running(settings) as url,
        httpx.Client(base_url=url, trust_env=False, timeout=60) as http,
    ):
        for _ in range(2):  # the miss is remembered: the second request answers the same
            body = http.post(
                "/v1/predict", files={"file": ("p.jpg", photo_jpeg, "image/jpeg")}
            ).json()
            assert body["path"] == "photo"
            assert body["model_name"] == "fmnist-classifier"
            if photo_model is None:
                assert body["fallback"] is None
            else:
                assert "'fmnist-missing@champion' is not registered" in body["fallback"]
