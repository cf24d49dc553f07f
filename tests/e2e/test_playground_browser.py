"""The playground in a real browser (Debian's Chromium, headless) against a real `wgan-serve` on 127.0.0.1 with the
bundled model and a toy point model: every panel is driven as a person would, and what it shows is checked
against what the API returns for the same request. One browser for the module, one server per configuration;
screenshots of each state go to the test's output folder (printed).
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.deploy.processes import Replica
from tests.e2e.browser import console_errors, emulate_width, headless_chromium, wait_until
from tests.e2e.serve_process import start_serve

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "bundled_models" / "mnist5k.safetensors"
KEY = "playground-key-3b9d"

GRID_READY = """
const imgs = [...document.querySelectorAll('#grid img')];
return imgs.length === arguments[0] && imgs.every(i => i.complete && i.naturalWidth > 0)
  && document.querySelector('#grid figcaption').textContent === 'seed ' + arguments[1];
"""
BROWSER_PIXELS = """
const img = arguments[0];
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const ctx = canvas.getContext('2d');
ctx.drawImage(img, 0, 0);
return Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data);
"""


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def data_url_pixels(src: str) -> np.ndarray:
    assert src.startswith("data:image/png;base64,")
    return pixels(base64.b64decode(src.split(",", 1)[1]))


def shown_pixels(driver: WebDriver, img: object) -> np.ndarray:
    """What the browser decoded: the image drawn on a canvas, its red channel (the images are grey)."""
    rgba = np.asarray(driver.execute_script(BROWSER_PIXELS, img), dtype=np.uint8)
    return rgba.reshape(-1, 4)[:, 0]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory, tiny_points_checkpoint: Path) -> Path:
    folder = tmp_path_factory.mktemp("playground_models")
    shutil.copy(BUNDLED, folder / "mnist5k.safetensors")
    shutil.copy(tiny_points_checkpoint, folder / "ring8.safetensors")
    return folder


def _serve(models_dir: Path, name: str, *flags: str) -> Iterator[Replica]:
    log = models_dir.parent / f"{name}.log"
    server = start_serve(models_dir, log, "--torch-threads", "1", "--reload-poll-s", "0", *flags)
    try:
        yield server
    finally:
        assert server.stop() == 0, log.read_text()


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[Replica]:
    yield from _serve(models_dir, "open")


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("playground_screenshots")
    print(f"\nplayground screenshots: {folder}")
    return folder


def open_page(driver: WebDriver, url: str, count: int = 16, seed: int = 0) -> None:
    driver.get(url + "/")
    wait_until(driver, GRID_READY, count, seed)


def api_sample_png(server: Replica, seed: int) -> bytes:
    response = httpx.post(f"{server.url}/v1/sample", json={"seed": seed}, headers={"accept": "image/png"})
    assert response.status_code == 200
    return response.content


def test_the_page_opens_on_a_grid_of_the_default_model_that_matches_the_api(
    browser: WebDriver, server: Replica, shots: Path
) -> None:
    browser.get_log("browser")
    open_page(browser, server.url)
    browser.save_screenshot(str(shots / "01-opening-grid.png"))
    assert console_errors(browser) == []
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(name.startswith(server.url + "/") for name in resources), resources
    first_grid_ms = browser.execute_script("return performance.getEntriesByName('first-grid')[0].startTime")
    (shots / "timing.json").write_text(json.dumps({"page_load_to_first_grid_ms": first_grid_ms}))
    print(f"page load to first sample grid: {first_grid_ms:.0f} ms")

    images = browser.find_elements(By.CSS_SELECTOR, "#grid img")
    captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#grid figcaption")]
    assert captions == [f"seed {s}" for s in range(16)]
    assert [i.get_attribute("alt") for i in images] == [f"sample, seed {s}" for s in range(16)]
    expected = pixels(api_sample_png(server, 3))
    assert np.array_equal(data_url_pixels(images[3].get_attribute("src") or ""), expected)
    assert np.array_equal(shown_pixels(browser, images[3]), expected.reshape(-1))
    assert not np.array_equal(expected, pixels(api_sample_png(server, 4)))  # the comparison can tell seeds apart

    unnamed = browser.execute_script(
        "return [...document.querySelectorAll('input, select, button, a')].filter(c => !c.closest('[hidden]'))"
        ".filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label') && !c.textContent.trim())"
        ".map(c => c.outerHTML)"
    )
    assert unnamed == [], "every control has a label"
    tabbable = browser.execute_script(
        "return [...document.querySelectorAll('#grid .tile, #seed, #count, #shuffle, #grid-link')]"
        ".every(c => c.tabIndex >= 0)"
    )
    assert tabbable
    card = browser.find_element(By.ID, "card-fields").text
    assert "mnist5k" in card and "z_dim\n64" in card and "classes\n10 / 10" in card and "FD" in card


@pytest.mark.parametrize("width", [360, 1440])
def test_the_page_is_readable_at_phone_and_desktop_widths(
    browser: WebDriver, server: Replica, shots: Path, width: int
) -> None:
    emulate_width(browser, width)
    try:
        open_page(browser, server.url)
        browser.save_screenshot(str(shots / f"02-width-{width}.png"))
        client, scroll = browser.execute_script(
            "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]"
        )
        assert scroll <= client, f"the page scrolls sideways at {width} px"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_new_seed_gives_new_images_and_a_bad_count_shows_the_api_message(
    browser: WebDriver, server: Replica, shots: Path
) -> None:
    open_page(browser, server.url)
    before = browser.find_element(By.CSS_SELECTOR, "#grid img").get_attribute("src")
    seed = browser.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("1000", Keys.ENTER)
    wait_until(browser, GRID_READY, 16, 1000)
    assert browser.find_element(By.CSS_SELECTOR, "#grid img").get_attribute("src") != before
    assert np.array_equal(
        data_url_pixels(browser.find_element(By.CSS_SELECTOR, "#grid img").get_attribute("src") or ""),
        pixels(api_sample_png(server, 1000)),
    )

    browser.find_element(By.ID, "shuffle").click()
    drawn = wait_until(
        browser,
        "return document.querySelector('#grid figcaption').textContent !== 'seed 1000' "
        "&& document.querySelector('#seed').value",
    )
    wait_until(browser, GRID_READY, 16, int(drawn))

    count = browser.find_element(By.ID, "count")
    count.clear()
    count.send_keys("65", Keys.ENTER)
    expected = httpx.post(f"{server.url}/v1/sample", json={"model": "mnist5k", "n": 65, "seed": int(drawn)})
    assert expected.status_code == 422
    message = wait_until(browser, "return document.getElementById('sample-error').textContent")
    assert message == expected.json()["error"]["message"]
    browser.save_screenshot(str(shots / "03-bad-count.png"))
    count.clear()
    count.send_keys("0", Keys.ENTER)
    wait_until(
        browser, "return document.getElementById('sample-error').textContent.includes('greater than or equal to 1')"
    )


def test_the_walk_plays_and_the_slider_shows_the_frame_the_api_returns(
    browser: WebDriver, server: Replica, shots: Path
) -> None:
    open_page(browser, server.url)
    browser.find_elements(By.CSS_SELECTOR, "#grid .tile")[5].click()  # seed 5 joins the walk as a third keyframe
    keys = [int(i.get_attribute("value") or "-1") for i in browser.find_elements(By.CSS_SELECTOR, "#keyframes input")]
    assert keys == [0, 1, 5]
    steps = browser.find_element(By.ID, "steps")
    steps.clear()
    steps.send_keys("5")
    browser.find_element(By.CSS_SELECTOR, "#walk-form button[type=submit]").click()

    wait_until(browser, "return !document.getElementById('player').hidden")
    assert browser.execute_script("return document.getElementById('scrub').max") == "8"  # 2 segments of 5 frames
    first = browser.execute_script("return document.getElementById('scrub').value")
    wait_until(browser, "return document.getElementById('scrub').value !== arguments[0]", first)  # it plays
    assert browser.find_element(By.ID, "play").get_attribute("aria-pressed") == "true"

    scrub = browser.find_element(By.ID, "scrub")
    scrub.send_keys(Keys.HOME)  # a key on the slider pauses the animation and shows that frame
    for _ in range(6):
        scrub.send_keys(Keys.ARROW_RIGHT)
    wait_until(browser, "return document.getElementById('scrub').value === '6'")
    assert browser.find_element(By.ID, "play").get_attribute("aria-pressed") == "false"
    api = httpx.post(
        f"{server.url}/v1/interpolate",
        json={"model": "mnist5k", "points": [{"seed": 0}, {"seed": 1}, {"seed": 5}], "steps": 5, "method": "slerp"},
    ).json()
    frame = api["frames"][6]
    shown = browser.find_element(By.ID, "frame").get_attribute("src") or ""
    assert np.array_equal(data_url_pixels(shown), pixels(base64.b64decode(frame["data"])))
    assert not np.array_equal(data_url_pixels(shown), pixels(base64.b64decode(api["frames"][5]["data"])))
    info = browser.find_element(By.ID, "frame-info").text
    assert info == f"7 / 9 · segment {frame['segment']} · t {frame['t']:.2f}"
    browser.save_screenshot(str(shots / "04-walk.png"))


def allow_downloads(driver: WebDriver, folder: Path) -> None:
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})


def downloaded(folder: Path, suffix: str, timeout: float = 15.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == suffix]
        if done:
            return done[0].read_bytes()
        time.sleep(0.05)
    raise AssertionError(f"no {suffix} file was downloaded to {folder}: {list(folder.iterdir())}")


def test_the_grid_and_gif_links_download_what_the_api_makes(
    browser: WebDriver, server: Replica, tmp_path: Path
) -> None:
    allow_downloads(browser, tmp_path)
    open_page(browser, server.url)
    browser.find_element(By.ID, "grid-link").click()
    grid = Image.open(io.BytesIO(downloaded(tmp_path, ".png")))
    api_grid = httpx.post(f"{server.url}/v1/sample", json={"model": "mnist5k", "seed": 0, "n": 16, "grid": True})
    assert np.array_equal(np.asarray(grid), np.asarray(Image.open(io.BytesIO(api_grid.content))))
    browser.find_element(By.ID, "gif-link").click()
    gif = Image.open(io.BytesIO(downloaded(tmp_path, ".gif")))
    assert gif.format == "GIF" and getattr(gif, "n_frames", 1) == 8  # two keyframes, 8 steps


def test_dropped_and_chosen_images_get_scores_and_errors_read_as_the_api_says(
    browser: WebDriver, server: Replica, shots: Path, tmp_path: Path
) -> None:
    open_page(browser, server.url)
    digit = api_sample_png(server, 7)
    png, jpeg, text, small = (tmp_path / n for n in ("digit.png", "digit.jpg", "notes.txt", "small.png"))
    png.write_bytes(digit)
    Image.open(io.BytesIO(digit)).save(jpeg, format="JPEG", quality=95)
    text.write_text("not an image\n")
    Image.open(io.BytesIO(digit)).resize((16, 16)).save(small)
    browser.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in (png, jpeg, text, small)))
    done = """
    const rows = [...document.querySelectorAll('#scores li')];
    return rows.length === arguments[0] && rows.every(r => !r.textContent.includes('scoring'))
      && Object.fromEntries(rows.map(r => [r.querySelector('.name').textContent, r.querySelector('.result')]));
    """
    results = wait_until(browser, done, 4)
    for name in ("digit.png", "digit.jpg"):
        meter = results[name].find_element(By.CSS_SELECTOR, "[role=meter]")
        percentile = float(meter.get_attribute("aria-valuenow") or "nan")
        assert 0 <= percentile <= 100
        assert "percentile" in results[name].text
    expected = httpx.post(f"{server.url}/v1/score", json={"images": [base64.b64encode(digit).decode()]}).json()
    shown = float(results["digit.png"].find_element(By.CSS_SELECTOR, "[role=meter]").get_attribute("aria-valuenow"))
    assert shown == pytest.approx(expected["scores"][0]["percentile"], abs=0.051)
    assert "is not a PNG, JPEG or WebP image" in results["notes.txt"].text
    assert "16" in results["small.png"].text and "32" in results["small.png"].text  # the size error, as the API says
    browser.save_screenshot(str(shots / "05-score-errors.png"))
    results["small.png"].find_element(By.XPATH, ".//button[starts-with(., 'fit to 32')]").click()
    wait_until(browser, "return arguments[0].querySelector('[role=meter]')", results["small.png"])

    # A drop: the same events a person's drag and drop fires, carrying a real PNG file.
    browser.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
        const zone = document.getElementById('drop');
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
        """,
        base64.b64encode(digit).decode(),
    )
    results = wait_until(browser, done, 5)
    assert results["dropped.png"].find_element(By.CSS_SELECTOR, "[role=meter]")
    browser.save_screenshot(str(shots / "06-scores.png"))


def test_a_point_model_is_drawn_as_a_scatter_plot_and_its_walk_as_a_path(
    browser: WebDriver, server: Replica, shots: Path
) -> None:
    open_page(browser, server.url)
    Select(browser.find_element(By.ID, "model")).select_by_value("ring8")
    titles = wait_until(
        browser,
        "const t = [...document.querySelectorAll('#scatter circle.dot title')].map(t => t.textContent);"
        "return t.length === 16 && !document.getElementById('scatter').hidden && t;",
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#grid img") == []
    api = httpx.post(f"{server.url}/v1/sample", json={"model": "ring8", "seed": 0, "n": 16}).json()
    assert titles == [f"seed {p['seed']}: ({', '.join(f'{v:.3f}' for v in p['point'])})" for p in api["points"]]
    assert "modes" in browser.find_element(By.ID, "card-fields").text
    browser.find_element(By.CSS_SELECTOR, "#walk-form button[type=submit]").click()
    route = wait_until(browser, "return document.querySelector('#walk-plot polyline')?.getAttribute('points')")
    assert len(route.split()) == 8  # two keyframes, 8 steps: one vertex per frame
    assert browser.find_element(By.ID, "gif-link").is_displayed() is False
    browser.save_screenshot(str(shots / "07-points.png"))


@pytest.fixture(scope="module")
def conditional_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_conditional_checkpoint: Path
) -> Iterator[Replica]:
    """The bundled model (the default, first by name) and the trainer's tiny class-conditional one."""
    folder = tmp_path_factory.mktemp("playground_conditional")
    shutil.copy(BUNDLED, folder / "mnist5k.safetensors")
    shutil.copy(tiny_conditional_checkpoint, folder / "tiny-cond.safetensors")
    yield from _serve(folder, "conditional")


def test_a_conditional_model_gets_a_class_picker_that_every_panel_uses(
    browser: WebDriver, conditional_server: Replica, shots: Path
) -> None:
    url = conditional_server.url
    open_page(browser, url)
    assert not browser.find_element(By.ID, "label-field").is_displayed()  # the bundled model has no classes
    Select(browser.find_element(By.ID, "model")).select_by_value("tiny-cond")
    picker = Select(browser.find_element(By.ID, "label"))
    assert browser.find_element(By.ID, "label-field").is_displayed()
    assert [o.text for o in picker.options] == [str(d) for d in range(10)]
    picker.select_by_visible_text("7")
    wait_until(browser, GRID_READY, 16, 0)
    wait_until(browser, "return document.getElementById('sample-status').textContent.startsWith('16 from seed 0')")
    api = httpx.post(f"{url}/v1/sample", json={"model": "tiny-cond", "seed": 0, "n": 16, "label": 7}).json()
    wait_until(
        browser,
        "return document.querySelectorAll('#grid img')[3].getAttribute('src') === arguments[0]",
        "data:image/png;base64," + api["images"][3]["data"],
    )
    assert browser.find_element(By.ID, "sample-error").text == ""
    browser.find_element(By.CSS_SELECTOR, "#walk-form button[type=submit]").click()
    wait_until(browser, "return !document.getElementById('player').hidden")
    assert browser.find_element(By.ID, "walk-error").text == ""
    browser.save_screenshot(str(shots / "09-conditional.png"))
    Select(browser.find_element(By.ID, "model")).select_by_value("mnist5k")
    wait_until(browser, "return document.getElementById('label-field').hidden")


def test_the_live_panel_shows_batching_from_the_metrics(browser: WebDriver, server: Replica, shots: Path) -> None:
    open_page(browser, server.url)
    browser.find_element(By.ID, "shuffle").click()
    batch = wait_until(
        browser, "const v = parseFloat(document.getElementById('live-batch').textContent); return v >= 1 && v"
    )
    assert batch >= 1
    rate = float(wait_until(browser, "return document.getElementById('live-rate').textContent"))
    assert rate >= 0
    assert browser.find_elements(By.CSS_SELECTOR, "#live-fields svg.spark polyline")
    browser.save_screenshot(str(shots / "08-live.png"))


@pytest.fixture(scope="module")
def keyed_server(models_dir: Path) -> Iterator[Replica]:
    yield from _serve(models_dir, "keyed", "--api-keys", KEY)


def test_with_keys_the_page_asks_for_one_refuses_a_wrong_one_and_keeps_the_right_one_in_the_tab(
    browser: WebDriver, keyed_server: Replica, shots: Path
) -> None:
    browser.get(keyed_server.url + "/")
    wait_until(browser, "return !document.getElementById('key-form').hidden")
    assert browser.find_elements(By.CSS_SELECTOR, "#grid img") == []
    assert browser.find_element(By.ID, "key-status").text == ""
    key = browser.find_element(By.ID, "key")
    key.send_keys("wrong-key", Keys.ENTER)
    wait_until(browser, "return document.getElementById('key-status').textContent === 'key refused'")
    browser.save_screenshot(str(shots / "09-key-refused.png"))
    key.send_keys(KEY, Keys.ENTER)
    wait_until(browser, GRID_READY, 16, 0)
    assert browser.find_element(By.ID, "key-form").is_displayed() is False
    stored = browser.execute_script("return [sessionStorage.getItem('wgan-api-key'), localStorage.length]")
    assert stored == [KEY, 0]
    assert KEY not in browser.current_url
    browser.get_log("browser")
