//! The operator's page in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`), against a real `tessera serve`. It types a registration as an
//! operator would, sees the Italian error next to the field with what was typed
//! kept, corrects it, finds the person again by typing part of the name (the page's
//! script), and moves through the page with the keyboard.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test says so
//! loudly and passes. With `TESSERA_SCREENSHOTS=DIR` it saves what the browser showed.
//!
//! The WebDriver client is the few HTTP/1.1 requests this test needs, written here:
//! the protocol is JSON over HTTP and a crate for it would add a web client stack to
//! the build for one test.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

/// One HTTP/1.1 exchange with the driver; the answer's JSON.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    // The driver may keep the connection open: read the head, then what it announces.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let (head, mut rest) = loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the driver closed the connection");
        raw.extend_from_slice(&buf[..n]);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break (String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase(), raw[at + 4..].to_vec());
        }
    };
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let complete = match length {
            Some(length) => rest.len() >= length,
            None if chunked => rest.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        match stream.read(&mut buf).unwrap() {
            0 => break,
            n => rest.extend_from_slice(&buf[..n]),
        }
    }
    let rest = String::from_utf8_lossy(&rest).into_owned();
    let payload = if chunked { dechunk(&rest) } else { rest };
    serde_json::from_str(&payload).unwrap_or_else(|e| panic!("driver answered {head:?} {payload:?}: {e}"))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// `chromedriver` on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Option<Driver> {
        let program = find_program("chromedriver")?;
        if !Path::new(CHROMIUM).exists() {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let driver = Driver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(driver);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not listen within 20 s");
    }

    fn session(&self) -> Browser<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=it-IT"]
        }}}});
        let answer = http(self.port, "POST", "/session", Some(&caps));
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Browser { driver: self, id }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Browser<'a> {
    driver: &'a Driver,
    id: String,
}

impl Browser<'_> {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let answer = http(self.driver.port, method, &format!("/session/{}{path}", self.id), body.as_ref());
        if let Some(error) = answer["value"].get("error") {
            panic!("WebDriver {method} {path}: {error} {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }
    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }
    fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap_or("").to_string()
    }
    fn find(&self, css: &str) -> String {
        let found = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        match found[ELEMENT].as_str() {
            Some(id) => id.to_string(),
            None => panic!("no {css} ({found}) on {}:\n{}", self.url(), self.call("GET", "/source", None)),
        }
    }
    fn exists(&self, css: &str) -> bool {
        let found = self.call("POST", "/elements", Some(json!({"using": "css selector", "value": css})));
        found.as_array().is_some_and(|a| !a.is_empty())
    }
    fn type_in(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call("POST", &format!("/element/{element}/value"), Some(json!({ "text": text })));
    }
    fn click(&self, css: &str) {
        let element = self.find(css);
        self.call("POST", &format!("/element/{element}/click"), Some(json!({})));
    }
    fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.call("GET", &format!("/element/{element}/text"), None).as_str().unwrap_or("").to_string()
    }
    fn value(&self, css: &str) -> String {
        let element = self.find(css);
        self.call("GET", &format!("/element/{element}/property/value"), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    /// Presses keys on whatever has the focus.
    fn keys(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                [
                    json!({"type": "keyDown", "value": c.to_string()}),
                    json!({"type": "keyUp", "value": c.to_string()}),
                ]
            })
            .collect();
        self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
    }
    fn focused(&self) -> String {
        let element = self.call("GET", "/element/active", None)[ELEMENT].as_str().unwrap().to_string();
        self.call("GET", &format!("/element/{element}/property/outerHTML"), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    fn wait_for(&self, what: &str, mut ready: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ready(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("waited 10 s for {what}; page at {}", self.url());
    }
    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("TESSERA_SCREENSHOTS") else { return };
        let encoded = self.call("GET", "/screenshot", None);
        std::fs::write(Path::new(&dir).join(name), base64_decode(encoded.as_str().unwrap())).unwrap();
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let _ = http(self.driver.port, "DELETE", &format!("/session/{}", self.id), None);
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> =
        text.bytes().filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, d)| acc | (u32::from(*d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn a_hub_day_in_a_real_browser_seen_in_the_cli_and_on_a_second_hub() {
    let Some(driver) = Driver::start() else {
        eprintln!(
            "\n\n*** SKIPPED node/tests/web.rs: the browser test needs Debian's `chromium` and \
             `chromium-driver` (apt-get install -y chromium chromium-driver) ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    common::ok(&data, &["init", "--site", "Polo Prova"]);
    let daemon = common::Daemon::start(&data);
    assert!(daemon.page.starts_with("http://127.0.0.1:"), "{:?}", daemon.page);
    let browser = driver.session();

    // The registration form; a minor without guardian.
    browser.go(&format!("{}/people/new", daemon.page));
    browser.type_in("#f-given", "Giulia");
    browser.type_in("#f-family", "Esempio");
    browser.type_in("#f-birth_year", "2014");
    browser.type_in("#f-operator", "Operatore Prova");
    browser.click("form.stack button[type=submit]");
    browser.wait_for("the error next to the guardian's field", |b| b.exists("#e-guardian_name"));
    assert!(
        browser.text("#e-guardian_name").contains("La persona è minorenne"),
        "{}",
        browser.text("#e-guardian_name")
    );
    assert_eq!(browser.value("#f-given"), "Giulia", "what was typed is kept");
    assert_eq!(browser.value("#f-birth_year"), "2014");
    // The summary above the form links to the field.
    browser.click(".notice.error a[href='#f-guardian_name']");
    browser.wait_for("the guardian's field in view", |b| b.url().ends_with("#f-guardian_name"));
    browser.screenshot("register-error.png");

    // Corrected, it is saved and the person's page shows it.
    browser.type_in("#f-guardian_name", "Anna Esempio");
    browser.type_in("#f-guardian_phone", "3331234567");
    browser.click("form.stack button[type=submit]");
    browser.wait_for("the person's page", |b| b.exists("h1") && b.text("h1") == "Giulia Esempio");
    assert!(browser.text("main").contains("Anna Esempio, 3331234567"));
    let giulia = browser.url().split("/people/").nth(1).unwrap().split('?').next().unwrap().to_string();

    // Found again by typing part of the name: the results change without a click.
    browser.go(&format!("{}/people", daemon.page));
    browser.type_in("#f-q", "giu");
    browser.wait_for("results while typing", |b| {
        b.text("#results").contains("Esempio") && b.url().contains("q=giu")
    });
    browser.screenshot("people-search.png");

    // The keyboard: the first Tab reaches the skip link, which leads to the content.
    browser.go(&format!("{}/", daemon.page));
    browser.keys("\u{E004}");
    assert!(browser.focused().contains("class=\"skip\""), "{}", browser.focused());

    // The rest of a hub's day in the page: a tablet registered and lent to her, the
    // agreement printed, a course booked and attendance taken.
    browser.go(&format!("{}/devices/new", daemon.page));
    browser.type_in("#f-tag", "TAB-0042");
    browser.click("form.stack button[type=submit]");
    // Waits on the URL, not on an element's text: an element read while the page is
    // being replaced goes stale.
    browser.wait_for("the device's page", |b| b.url().contains("/devices/") && b.url().contains("saved=1"));
    browser.go(&format!("{}/loans/new?person_q=giulia&device_q=tab&expected_return=2027-06-30", daemon.page));
    browser.wait_for("the choices", |b| b.exists("#f-person-0") && b.exists("#f-device-0"));
    browser.click("#f-person-0");
    browser.click("#f-device-0");
    browser.click("#f-agreement_signed");
    browser.click("form.stack .actions:last-child button[type=submit]");
    browser.wait_for("the agreement to print", |b| b.url().contains("/agreement"));
    let agreement = browser.text("main");
    assert!(
        agreement.contains("Giulia Esempio")
            && agreement.contains("Anna Esempio")
            && agreement.contains("TAB-0042"),
        "{agreement}"
    );
    browser.go(&format!(
        "{}/sessions/new?person={giulia}&kind=course&topic=Tablet+sicuro&start=2026-12-09T15:00&end=2026-12-09T17:00&audience=students",
        daemon.page
    ));
    browser.wait_for("the booking form", |b| b.exists("#f-person-0"));
    browser.click("form.stack .actions button[type=submit]");
    browser.wait_for("the session's page", |b| b.exists("#f-present-0"));
    browser.click("#f-present-0"); // she did not come after all...
    browser.click("#f-present-0"); // ...yes she did
    browser.click("form.stack .actions button[type=submit]");
    browser.wait_for("attendance saved", |b| b.url().contains("/sessions/") && b.url().contains("saved=1"));
    drop(browser);

    // All of it in the CLI beside the daemon, and on a second hub after a sync.
    let loans = common::ok(&data, &["loan", "list"]);
    assert!(loans.contains("Giulia Esempio") && loans.contains("TAB-0042"), "{loans}");
    let sessions = common::ok(&data, &["session", "list"]);
    let course =
        sessions.lines().find(|l| l.contains("Tablet sicuro")).unwrap().split_whitespace().next().unwrap();
    let shown = common::ok(&data, &["session", "show", course]);
    assert!(shown.contains("1 present / 1") && shown.contains("Giulia Esempio"), "{shown}");
    let b = common::joined_hub_of_same_partner(&data, dir.path(), "Polo Due");
    common::ok(&b, &["sync", "--peer", &daemon.addr]);
    let there = common::ok(&b, &["loan", "list"]);
    assert!(there.contains("Giulia Esempio") && there.contains("TAB-0042"), "on the second hub: {there}");
    let present = common::ok(&b, &["session", "list"]);
    assert!(present.contains("Tablet sicuro"), "{present}");
    daemon.stop();
}

#[test]
fn the_page_asks_who_is_working_in_a_real_browser() {
    let Some(driver) = Driver::start() else {
        eprintln!("\n\n*** SKIPPED the browser test of 'who is working': no chromium/chromedriver ***\n");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    common::ok(&data, &["init", "--site", "Polo Prova"]);
    common::ok(&data, &["operator", "add", "Anna Rossi"]);
    common::ok(&data, &["operator", "add", "Luca Bianchi"]);
    let daemon = common::Daemon::start(&data);
    let browser = driver.session();

    // Any page first asks who is working, then goes where it was asked.
    browser.go(&format!("{}/people", daemon.page));
    browser.wait_for("the question", |b| b.exists("h1") && b.text("h1") == "Chi sta lavorando?");
    assert!(browser.url().contains("/who?next=%2Fpeople"), "{}", browser.url());
    browser.screenshot("who.png");
    // Listed in alphabetical order: Anna Rossi, Luca Bianchi.
    browser.click("label[for='f-name-1']");
    browser.click("form.stack button[type=submit]");
    browser.wait_for("the people page", |b| b.url().ends_with("/people"));
    assert!(browser.text("header").contains("Al lavoro: Luca Bianchi"), "{}", browser.text("header"));
    browser.screenshot("who-working.png");
    drop(browser);
    daemon.stop();
}
