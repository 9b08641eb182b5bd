"""
A headless chromium for the page tests: tests/browser/driver.mjs (playwright-core
with Debian's /usr/bin/chromium, installed by scripts/install-deps) in one Node
process, commanded one JSON line at a time. `Browser.cmd(op, **args)` returns the
answer's fields or raises AssertionError with the driver's error.
"""
import json
import os
import select
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DRIVER = os.path.join(ROOT, "tests", "browser", "driver.mjs")
CHROMIUM = os.environ.get("ROSTER_CHROMIUM", "/usr/bin/chromium")
TIMEOUT = 60


class Browser:
    def __init__(self):
        missing = [what for what, ok in (
            (CHROMIUM, os.access(CHROMIUM, os.X_OK)),
            ("node", shutil.which("node") is not None),
            ("node_modules/playwright-core",
             os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core"))),
            ("node_modules/axe-core", os.path.isdir(os.path.join(ROOT, "node_modules", "axe-core"))),
        ) if not ok]
        assert not missing, f"browser tests need {missing}: run scripts/install-deps"
        self.proc = subprocess.Popen(["node", DRIVER], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     bufsize=1)

    def cmd(self, op, **args):
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        assert ready, f"browser: no answer to {op} within {TIMEOUT} s"
        line = self.proc.stdout.readline()
        assert line, f"browser: driver exited ({self.proc.poll()}): {self.proc.stderr.read()}"
        answer = json.loads(line)
        assert answer.pop("ok"), f"browser: {op} {args}: {answer.get('error')}"
        return answer

    def close(self):
        try:
            self.cmd("quit")
        except (AssertionError, OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
