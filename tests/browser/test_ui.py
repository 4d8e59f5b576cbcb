"""The web UI in a real browser: headless Debian Chromium against the real app under uvicorn.

Uploads a real photo, clicks a Fashion-MNIST test image, drops a corrupt file and sends a blank
image, and checks what the page shows against the JSON API's own answers for the same bytes.
Screenshots go to ``tests/browser/artifacts/``; ``docs/images/ui.png`` is written when missing
or when ``FMNIST_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from data_paths import missing

from .support import ARTIFACTS, CHROMIUM, DOCS_SCREENSHOT, PHOTOS

pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed (pip install 'playwright==1.65.*')",
)
if not CHROMIUM.is_file():
    pytest.skip(
        f"{CHROMIUM} not found (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.network]

DOCS_SCREENSHOT_MAX_BYTES = 300 * 1024


def tid(name: str) -> str:
    """The selector of a ``data-testid``."""
    return f'[data-testid="{name}"]'


@pytest.fixture(scope="module")
def pants_photo() -> Path:
    """A real photo of trousers."""
    folder = PHOTOS / "validation/pants"
    photos = sorted(folder.glob("*.jpg"))
    if not photos:
        missing(f"no clothing photos in {folder} (set FMNIST_PHOTOS_DIR)")
    return photos[0]


def api_predict(api: httpx.Client, name: str, data: bytes, mime: str) -> httpx.Response:
    """The API's answer for one file, as the page sends it."""
    return api.post(
        "/v1/predict", params={"return_image": "true"}, files={"file": (name, data, mime)}
    )


def wait_for_answer(page: Page) -> None:
    """Wait until the result panel shows an answer."""
    page.wait_for_selector(f'{tid("result")}[data-state="answer"]')


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot in the artifacts folder."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def shown_top3(page: Page) -> list[dict[str, Any]]:
    """The top-3 rows on the page: class id, name, probability and percentage text."""
    rows = page.locator(tid("top3-item"))
    return [
        {
            "class_id": int(rows.nth(i).get_attribute("data-class-id") or -1),
            "name": rows.nth(i).locator(tid("top3-name")).inner_text(),
            "probability": float(rows.nth(i).get_attribute("data-probability") or "nan"),
            "percent": rows.nth(i).locator(tid("top3-percent")).inner_text(),
        }
        for i in range(rows.count())
    ]


def test_upload_shows_the_api_answer(page: Page, api: httpx.Client, pants_photo: Path) -> None:
    """A real photo: the label, top 3, model input and model version match the API."""
    data = pants_photo.read_bytes()
    expected = api_predict(api, pants_photo.name, data, "image/jpeg")
    assert expected.status_code == 200, expected.text
    prediction = expected.json()["predictions"][0]
    served = api.get("/v1/models").json()["served"]

    page.set_input_files(tid("upload-input"), str(pants_photo))
    wait_for_answer(page)

    assert page.get_attribute(tid("result-label"), "data-label") == prediction["label"]
    shown = page.inner_text(tid("result-label"))
    assert shown == ("Unknown" if prediction["label"] == "unknown" else prediction["label"])

    top3 = shown_top3(page)
    assert len(top3) == 3
    ranked = sorted(range(10), key=lambda i: -prediction["probabilities"][i])[:3]
    assert [row["class_id"] for row in top3] == ranked
    assert top3[0]["name"] == prediction["top_label"]
    percents = [float(re.fullmatch(r"(\d+(?:\.\d)?)%", row["percent"])[1]) for row in top3]
    assert percents == sorted(percents, reverse=True)
    assert 0 < sum(percents) <= 100.5
    expected_percents = [round(100 * prediction["probabilities"][i], 1) for i in ranked]
    assert percents == pytest.approx(expected_percents, abs=0.11)
    bar_widths = page.eval_on_selector_all(
        f"{tid('top3')} .bar > span", "bars => bars.map(b => b.getBoundingClientRect().width)"
    )
    assert len(bar_widths) == 3
    assert bar_widths == sorted(bar_widths, reverse=True)

    model_input = page.locator(tid("model-input"))
    src = model_input.get_attribute("src") or ""
    assert src == f"data:image/png;base64,{prediction['model_input_png']}"
    assert model_input.evaluate("img => img.complete && img.naturalWidth") == 28
    assert Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).size == (28, 28)
    rendering = model_input.evaluate("img => getComputedStyle(img).imageRendering")
    assert rendering in {"pixelated", "crisp-edges"}
    assert page.locator(tid("original-image")).evaluate("img => img.naturalWidth") > 28

    badge = page.locator(tid("model-version"))
    assert badge.get_attribute("data-version") == str(served["version"])
    assert f"v{served['version']}" in badge.inner_text()
    body = expected.json()  # a photo: the photo path, answered by the model the API names
    path = page.locator(tid("result-path"))
    assert path.get_attribute("data-path") == body["path"] == "photo"
    expect(path).to_contain_text(f"answered by {body['model_name']} v{body['model_version']}")

    unknown = page.locator(tid("verdict-unknown"))
    if prediction["label"] == "unknown":
        expect(unknown).to_be_visible()
        for reason in prediction["reasons"]:
            expect(unknown).to_contain_text(reason)
    else:
        expect(unknown).to_be_hidden()

    screenshot(page, "upload")
    if not DOCS_SCREENSHOT.exists() or os.environ.get("FMNIST_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_SCREENSHOT), full_page=True)
    assert DOCS_SCREENSHOT.stat().st_size < DOCS_SCREENSHOT_MAX_BYTES


def test_clicking_a_test_sample_shows_a_result(page: Page, api: httpx.Client) -> None:
    """The grid shows /v1/samples; clicking one classifies it and shows its true label."""
    expected = api.get("/v1/samples", params={"n": 12, "seed": 0}).json()["samples"]
    samples = page.locator(tid("sample"))
    expect(samples).to_have_count(len(expected))
    assert samples.first.get_attribute("data-label") == expected[0]["label"]
    assert samples.first.locator("img").evaluate("img => img.naturalWidth") == 28

    with page.expect_response(lambda r: "/v1/predict" in r.url) as response:
        samples.first.click()
    assert response.value.status == 200
    wait_for_answer(page)

    answer = response.value.json()["predictions"][0]
    assert page.get_attribute(tid("result-label"), "data-label") == answer["label"]
    expect(page.locator(tid("top3-item"))).to_have_count(3)
    expect(page.locator(tid("result-truth"))).to_contain_text(expected[0]["label"])
    assert page.get_attribute(tid("result-path"), "data-path") == "fashion-mnist"
    assert page.locator(tid("model-input")).evaluate("img => img.naturalWidth") == 28
    assert samples.first.get_attribute("aria-pressed") == "true"
    screenshot(page, "sample")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "sample-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "sample-mobile")


def test_why_shows_an_explanation_heatmap(page: Page, api: httpx.Client) -> None:
    """After a prediction, "Why?" posts the same image to /v1/explain and shows its heatmap
    beside the prediction; another method re-explains."""
    sample = api.get("/v1/samples", params={"n": 12, "seed": 0}).json()["samples"][0]
    warm = api.post(  # the first explanation imports PyTorch: keep it out of the page's wait
        "/v1/explain", files={"file": ("x.png", base64.b64decode(sample["png_b64"]), "image/png")}
    )
    assert warm.status_code == 200, warm.text
    expected = warm.json()["explanations"][0]

    with page.expect_response(lambda r: "/v1/predict" in r.url):
        page.locator(tid("sample")).first.click()
    wait_for_answer(page)
    figure = page.locator(tid("explain-figure"))
    expect(figure).to_be_hidden()
    assert page.locator(tid("explain-method")).input_value() == "integrated_gradients"

    with page.expect_response(lambda r: "/v1/explain" in r.url) as response:
        page.locator(tid("explain-button")).click()
    assert response.value.status == 200
    assert "method=integrated_gradients" in response.value.url
    expect(figure).to_be_visible()
    heatmap = page.locator(tid("explain-heatmap"))
    expect(heatmap).to_have_attribute("data-method", "integrated_gradients")
    assert heatmap.evaluate("img => img.complete && img.naturalWidth") == 224
    assert heatmap.get_attribute("data-class-id") == str(expected["class_id"])
    src = heatmap.get_attribute("src") or ""
    assert src == f"data:image/png;base64,{response.value.json()['explanations'][0]['heatmap_png']}"
    expect(page.locator(tid("explain-caption"))).to_contain_text(expected["label"])
    screenshot(page, "explain")
    # beside the model input (same row, to its right), not below it
    model_box = page.locator(tid("model-input")).bounding_box()
    heatmap_box = heatmap.bounding_box()
    assert model_box is not None and heatmap_box is not None
    assert heatmap_box["x"] >= model_box["x"] + model_box["width"]
    assert heatmap_box["y"] < model_box["y"] + model_box["height"]
    assert model_box["y"] < heatmap_box["y"] + heatmap_box["height"]

    with page.expect_response(lambda r: "/v1/explain" in r.url) as response:
        page.select_option(tid("explain-method"), "occlusion")
    assert response.value.status == 200 and "method=occlusion" in response.value.url
    expect(heatmap).to_have_attribute("data-method", "occlusion")

    with page.expect_response(lambda r: "/v1/predict" in r.url):
        page.locator(tid("sample")).nth(1).click()
    wait_for_answer(page)
    expect(figure).to_be_hidden()  # a new prediction clears the old explanation


def test_a_corrupt_file_shows_the_problem_detail(page: Page, api: httpx.Client) -> None:
    """A dropped corrupt JPEG: the page shows the problem JSON's title and detail."""
    data = b"\xff\xd8\xff\xe0 this is not really a JPEG"
    problem = api_predict(api, "broken.jpg", data, "image/jpeg")
    assert problem.status_code == 400
    assert problem.headers["content-type"].startswith("application/problem+json")
    body = problem.json()

    transfer = page.evaluate_handle(
        """([name, bytes]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, {type: "image/jpeg"}));
            return transfer;
        }""",
        ["broken.jpg", list(data)],
    )
    page.dispatch_event(tid("drop-zone"), "drop", {"dataTransfer": transfer})

    error = page.locator(tid("error"))
    expect(error).to_be_visible()
    expect(page.locator(tid("error-detail"))).to_have_text(body["detail"])
    expect(page.locator(tid("error-title"))).to_have_text(body["title"])
    expect(page.locator(tid("answer"))).to_be_hidden()
    screenshot(page, "error")


def test_a_blank_image_is_unknown_with_reasons(page: Page, api: httpx.Client) -> None:
    """A blank image: a clear "unknown" verdict with the API's reasons."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, format="PNG")
    expected = api_predict(api, "blank.png", buffer.getvalue(), "image/png")
    prediction = expected.json()["predictions"][0]
    assert prediction["label"] == "unknown"

    page.set_input_files(
        tid("upload-input"),
        files=[{"name": "blank.png", "mimeType": "image/png", "buffer": buffer.getvalue()}],
    )
    wait_for_answer(page)

    expect(page.locator(tid("result-label"))).to_have_text("Unknown")
    unknown = page.locator(tid("verdict-unknown"))
    expect(unknown).to_be_visible()
    expect(unknown.locator("li")).to_have_count(len(prediction["reasons"]))
    for reason in prediction["reasons"]:
        expect(unknown).to_contain_text(reason)
    screenshot(page, "unknown")


def test_links_to_the_api_docs_and_metrics(page: Page, api: httpx.Client) -> None:
    """The header links to the OpenAPI UI and the Prometheus metrics, and both answer."""
    for testid, path in (("link-docs", "/docs"), ("link-metrics", "/metrics")):
        link = page.locator(tid(testid))
        href = link.evaluate("a => a.href")
        assert href == f"{api.base_url}".rstrip("/") + path
        assert api.get(path).status_code == 200
