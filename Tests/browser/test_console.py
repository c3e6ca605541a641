"""The console in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium):
sign in, create a project and a key, issue a seat and use it, watch the overview move, approve, revoke,
a viewer's read-only console, sign out. Screenshots go to $QF_SCREENSHOTS (default: a temporary folder)."""
import json
import os
import sys
import tempfile
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "faults"))
from harness import Quotaflow, start_upstream  # noqa: E402

SHOTS = os.environ.get("QF_SCREENSHOTS") or tempfile.mkdtemp(prefix="qf-shots-")
TENANT_NAME = "Acme <script>alert('x')</script>"


def chromium():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000", "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def world():
    upstream, url = start_upstream()
    q = Quotaflow().start()
    setup = q.setup_tenant(url, name=TENANT_NAME)
    t = setup["tenant"]
    # Prices that make a request cost cents, so the bars show, and project "p" a cap to fill.
    q.admin("PUT", "/tenants/%s/pricing" % t, {"entries": [
        {"model": "fast-model", "input_per_mtok_micros": 1000000000, "output_per_mtok_micros": 2000000000}]})
    q.admin("PATCH", "/tenants/%s/projects/%s" % (t, setup["project"]), {"name": "Platform", "budget": {"monthly_cap_micros": 230000}})
    admin_key = q.admin("POST", "/tenants/%s/admin-keys" % t, {"name": "finance lead"})["key"]
    viewer_key = q.admin("POST", "/tenants/%s/admin-keys" % t, {"name": "auditor", "scope": "viewer"})["key"]
    # A project whose tiny cap sends the next request to an admin for approval.
    capped = q.admin("POST", "/tenants/%s/projects" % t, {
        "name": "capped", "pool_ids": [setup["pool"]], "budget": {"monthly_cap_micros": 1, "overage_policy": "approval"}})["id"]
    capped_key = q.admin("POST", "/tenants/%s/projects/%s/keys" % (t, capped), {"name": "ci"})["key"]
    yield dict(setup, q=q, admin_key=admin_key, viewer_key=viewer_key, capped_key=capped_key, capped=capped)
    q.terminate()
    upstream.shutdown()


@pytest.fixture(scope="module")
def browser(world):
    driver = chromium()
    yield driver
    driver.quit()


def shot(driver, name):
    driver.save_screenshot(os.path.join(SHOTS, name + ".png"))


def wait(driver, condition, timeout=15):
    # Live pages replace what they update: an element found a moment ago may be gone by the time it is read,
    # so a condition that meets a stale element is simply asked again.
    return WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException]).until(condition)


def sign_in(driver, base, key):
    driver.get(base + "/console/")
    wait(driver, EC.presence_of_element_located((By.ID, "key")))
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.ID, "sign-in").click()
    wait(driver, EC.presence_of_element_located((By.ID, "sign-out")))


def csp_errors(driver):
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def chat(q, key, model="fast-model"):
    return q.chat(key, model=model, max_tokens=50)[0]


def test_01_sign_in_shows_the_overview_with_the_tenant_name_inert(world, browser):
    base = world["q"].base
    sign_in(browser, base, world["admin_key"])
    assert browser.current_url.endswith("/console/overview")
    assert browser.find_element(By.ID, "tenant-name").text == TENANT_NAME
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    cookie = browser.get_cookie("qf_console")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert cookie["secure"] is False
    assert csp_errors(browser) == []


def test_02_create_a_project_and_issue_a_key_shown_once(world, browser):
    base, q = world["q"].base, world["q"]
    browser.get(base + "/console/projects")
    browser.find_element(By.ID, "p-name").send_keys("Mobile app")
    browser.find_element(By.ID, "p-cap").send_keys("25.00")
    Select(browser.find_element(By.ID, "p-overage")).select_by_value("reject")
    browser.find_element(By.CSS_SELECTOR, "input[name=pool_ids][value='%s']" % world["pool"]).click()
    browser.find_element(By.ID, "create-project").click()
    wait(browser, EC.text_to_be_present_in_element((By.ID, "project-name"), "Mobile app"))
    browser.find_element(By.ID, "k-name").send_keys("mobile backend")
    browser.find_element(By.ID, "issue-key").click()
    secret = wait(browser, EC.presence_of_element_located((By.ID, "new-secret"))).get_attribute("value")
    assert secret.startswith("qf_pk_")
    browser.find_element(By.CSS_SELECTOR, "button[data-copy]").click()
    assert chat(q, secret) == 200
    browser.refresh()
    wait(browser, EC.presence_of_element_located((By.ID, "project-name")))
    assert browser.find_elements(By.ID, "new-secret") == []
    assert secret not in browser.page_source


def test_03_issue_a_contractor_seat_and_use_its_key(world, browser):
    base, q = world["q"].base, world["q"]
    browser.get(base + "/console/seats?project_id=" + world["project"])
    browser.find_element(By.ID, "s-holder").send_keys("Ada Lovelace (contractor)")
    browser.find_element(By.ID, "s-contact").send_keys("ada@example.com")
    browser.find_element(By.ID, "s-cap").send_keys("50")
    shot(browser, "seat-issuance")
    browser.find_element(By.ID, "issue-seat").click()
    secret = wait(browser, EC.presence_of_element_located((By.ID, "new-secret"))).get_attribute("value")
    assert secret.startswith("qf_sk_")
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-holder='Ada Lovelace (contractor)']")
    assert "active" in row.text
    assert chat(q, secret) == 200
    world["seat_key"] = secret


def test_04_the_overview_spend_bar_moves_after_traffic_without_a_reload(world, browser):
    base, q = world["q"].base, world["q"]
    browser.get(base + "/console/overview")
    selector = "g[data-project='%s'] text[data-value='spend']" % world["project"]
    before = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, selector).text)
    browser.execute_script("window.__stillHere = 'yes';")
    for _ in range(5):
        assert chat(q, world["seat_key"]) == 200
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, selector).text != before, timeout=20)
    assert browser.execute_script("return window.__stillHere;") == "yes"
    assert browser.find_element(By.ID, "live").get_attribute("data-live-state") == "live"
    shot(browser, "overview")
    assert csp_errors(browser) == []


def test_05_resources_show_state_load_and_probes(world, browser):
    base = world["q"].base
    browser.get(base + "/console/resources")
    browser.find_element(By.CSS_SELECTOR, "tr[data-resource='%s'] a" % world["resource"]).click()
    wait(browser, EC.presence_of_element_located((By.ID, "resource-state")))
    assert browser.find_element(By.ID, "resource-state").text == "active"
    assert "in flight" in browser.find_element(By.ID, "in-flight").text
    assert "passed" in browser.find_element(By.ID, "probes").text
    shot(browser, "resources")
    browser.find_element(By.ID, "verify").click()
    wait(browser, EC.text_to_be_present_in_element((By.ID, "notice"), "Verify"))


def test_06_approve_a_pending_approval_then_revoke_the_seat(world, browser):
    base, q = world["q"].base, world["q"]
    status = chat(q, world["capped_key"])
    assert status in (402, 403, 429), status
    browser.get(base + "/console/approvals")
    card = wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "article.approval")))
    card.find_element(By.NAME, "grant_micros").send_keys("5")
    card.find_element(By.CSS_SELECTOR, "input[name=note]").send_keys("release week")
    card.find_element(By.CSS_SELECTOR, "button[data-approve]").click()
    wait(browser, EC.text_to_be_present_in_element((By.ID, "notice"), "Approved"))
    approvals = q.admin("GET", "/tenants/%s/approvals?status=approved" % world["tenant"])["data"]
    assert approvals and approvals[0]["note"] == "release week" and approvals[0]["grant_micros"] == 5000000
    assert chat(q, world["capped_key"]) == 200

    browser.get(base + "/console/seats?project_id=" + world["project"])
    browser.find_element(By.CSS_SELECTOR, "button[data-revoke='Ada Lovelace (contractor)']").click()
    wait(browser, EC.alert_is_present()).accept()
    wait(browser, EC.text_to_be_present_in_element((By.ID, "notice"), "Seat revoked"))
    assert chat(q, world["seat_key"]) == 401


def test_07_a_viewer_finds_every_write_action_absent_and_refused(world):
    base, q = world["q"].base, world["q"]
    driver = chromium()
    try:
        sign_in(driver, base, world["viewer_key"])
        assert driver.find_element(By.ID, "viewer-badge").is_displayed()
        for page in ("overview", "resources", "resources/" + world["resource"], "projects", "projects/" + world["project"],
                     "seats?project_id=" + world["project"], "usage", "ledger", "approvals?status=all", "audit"):
            driver.get(base + "/console/" + page)
            forms = driver.find_elements(By.CSS_SELECTOR, "form[method=post]")
            assert [f.get_attribute("action") for f in forms] == [base + "/console/logout"], page
        # A hand-made post with the viewer's own session and token is refused, and changes nothing.
        csrf = driver.find_element(By.CSS_SELECTOR, "form[action='/console/logout'] input[name=csrf]").get_attribute("value")
        cookie = driver.get_cookie("qf_console")["value"]
        req = urllib.request.Request(base + "/console/projects", data=("csrf=%s&name=viewer-made" % csrf).encode(), method="POST",
                                     headers={"cookie": "qf_console=" + cookie, "content-type": "application/x-www-form-urlencoded"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        assert refused.value.code == 403
        names = [p["name"] for p in q.admin("GET", "/tenants/%s/projects" % world["tenant"])["data"]]
        assert "viewer-made" not in names
    finally:
        driver.quit()


def test_08_phone_width_has_no_sideways_scroll(world, browser):
    base = world["q"].base
    browser.set_window_size(390, 844)
    try:
        for page in ("overview", "resources", "resources/" + world["resource"], "projects", "projects/" + world["project"],
                     "seats?project_id=" + world["project"], "usage", "ledger", "approvals?status=all", "audit"):
            browser.get(base + "/console/" + page)
            wide = browser.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
            assert wide <= 1, (page, wide)
        shot(browser, "overview-phone")
    finally:
        browser.set_window_size(1280, 1000)


def test_09_usage_ledger_and_audit_show_the_traffic(world, browser):
    base = world["q"].base
    browser.get(base + "/console/usage?group_by=model")
    assert "fast-model" in browser.find_element(By.ID, "usage-table").text
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    browser.get(base + "/console/ledger?model=fast-model")
    assert "fast-model" in browser.find_element(By.ID, "ledger").text
    browser.get(base + "/console/audit?action=seat.*")
    assert "admin_key:" in browser.find_element(By.ID, "audit").text
    assert "finance lead (admin key)" in browser.find_element(By.ID, "actor").text
    assert csp_errors(browser) == []


def test_10_sign_out_ends_the_session(world, browser):
    base = world["q"].base
    browser.get(base + "/console/overview")
    old = browser.get_cookie("qf_console")["value"]
    browser.find_element(By.ID, "sign-out").click()
    wait(browser, EC.presence_of_element_located((By.ID, "sign-in")))
    browser.get(base + "/console/overview")
    assert browser.current_url.endswith("/console/login")
    req = urllib.request.Request(base + "/console/overview", headers={"cookie": "qf_console=" + old})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.url.endswith("/console/login")
