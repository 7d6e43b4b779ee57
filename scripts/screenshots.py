#!/usr/bin/env python3
"""Regenerates the README's screenshots of the web UI (docs/*.png) from egret as shipped:
the embedded default policy (config/default.yaml), one stored key, one connect link.
Needs the debug binary (cargo build), Debian's chromium and chromium-driver; talks only
to 127.0.0.1. Usage: scripts/screenshots.py"""
import base64, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EGRET = os.path.join(ROOT, "target", "debug", "egret")
TOKEN = "screenshots-admin-token-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def wait(check, what, within=20):
    end = time.time() + within
    while time.time() < end:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"error: {what} did not happen within {within}s")


def main():
    work = tempfile.mkdtemp(prefix="egret-shots-")
    os.makedirs(os.path.join(work, "config"))
    shutil.copy(os.path.join(ROOT, "config", "default.yaml"), os.path.join(work, "config", "egret.yaml"))
    control, proxy, driver_port = free_port(), free_port(), free_port()
    env = dict(os.environ, EGRET_ADMIN_TOKEN=TOKEN,
               EGRET_CONTROL_LISTEN=f"127.0.0.1:{control}", EGRET_PROXY_LISTEN=f"127.0.0.1:{proxy}")
    base = f"http://127.0.0.1:{control}"
    server = subprocess.Popen([EGRET, "serve"], cwd=work, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={driver_port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: call("GET", f"{base}/readyz")["status"] == "ready", "egret ready")
        cli = lambda *args, stdin=None: subprocess.run([EGRET, *args, "--server", base], cwd=work, env=env,
                                                      input=stdin, text=True, check=True, capture_output=True)
        cli("connection", "set-key", "openai", "--owner", "user:alice@example.com", stdin="sk-demo-not-a-real-key\n")
        link = next(w for w in cli("connection", "link", "--owner", "user:alice@example.com").stdout.split() if w.startswith("http"))
        wd = f"http://127.0.0.1:{driver_port}"
        wait(lambda: call("GET", f"{wd}/status")["value"]["ready"], "chromedriver ready")

        def session():
            caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--hide-scrollbars", f"--user-data-dir={tempfile.mkdtemp(dir=work)}"]}}}}
            sid = call("POST", f"{wd}/session", caps)["value"]["sessionId"]
            call("POST", f"{wd}/session/{sid}/window/rect", {"width": 1100, "height": 900})
            return f"{wd}/session/{sid}"

        def find(s, css):
            v = call("POST", f"{s}/element", {"using": "css selector", "value": css})["value"]
            return next(iter(v.values()))

        def shot(s, name):
            png = base64.b64decode(call("GET", f"{s}/screenshot")["value"])
            with open(os.path.join(ROOT, "docs", name), "wb") as f:
                f.write(png)
            print(f"wrote docs/{name}")

        admin = session()
        call("POST", f"{admin}/url", {"url": f"{base}/ui/"})
        call("POST", f"{admin}/element/{find(admin, 'input#token')}/value", {"text": TOKEN})
        call("POST", f"{admin}/element/{find(admin, 'form button')}/click", {})
        wait(lambda: find(admin, "section.connector"), "Connector Settings")
        shot(admin, "ui-connector-settings.png")
        user = session()
        call("POST", f"{user}/url", {"url": link})
        call("POST", f"{user}/element/{find(user, 'form button')}/click", {})
        wait(lambda: find(user, "section.connection"), "Your connections")
        shot(user, "ui-your-connections.png")
    finally:
        driver.terminate()
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
