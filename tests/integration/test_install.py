"""make install / make uninstall into a temporary DESTDIR.

`make install DESTDIR=<tmp> PREFIX=/usr/local` is run with this build's
BUILD and LIBDIR (so nothing is rebuilt elsewhere), then:
  - the installed files are exactly the expected list, with their modes
    and the library symlinks;
  - examples/echo.c is built out of tree with nothing but the flags of
    `pkg-config --cflags --libs libwschat`, run against the installed
    shared library (LD_LIBRARY_PATH) and echoes through python3-websockets;
    and linked again with `pkg-config --static`, libwschat.a included;
  - the installed wschatd looks for the installed browser client;
  - the installed man pages render (the .so links resolve);
  - the example systemd unit has the expected keys;
  - `make uninstall` leaves no file behind.

pkg-config finds the staged libwschat.pc through PKG_CONFIG_PATH, and its
paths are moved into the staging tree with --define-variable=prefix=: the
.pc gives libdir and includedir relative to ${prefix}, so only libwschat's
own flags move. (PKG_CONFIG_SYSROOT_DIR would prefix every -I and -L,
libuv's system directories included, with the staging tree; it works, but
adds directories that do not exist.)
"""

import asyncio
import glob
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serverproc import ROOT, build_dir  # noqa: E402

PREFIX = "/usr/local"
SAN_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
             "-fno-omit-frame-pointer"]
VERSION = "0.1.0"


def build_variant():
    """(BUILD, LIBDIR, extra make arguments, extra cc flags) of the build
    under test: LIBDIR is lib/ for the default build and BUILD/lib for a
    variant; the sanitizer build gets the flags `make test-asan` uses, so
    that make finds everything up to date and a link with it works."""
    build = os.path.realpath(build_dir())
    libdir = os.path.join(ROOT, "lib")
    if build != os.path.join(ROOT, "build"):
        libdir = os.path.join(build, "lib")
    make_args, cc_flags = [], []
    if "asan" in os.path.relpath(build, ROOT):
        make_args = ["OPT=-O1 -g " + " ".join(SAN_FLAGS),
                     "EXTRA_LDFLAGS=" + " ".join(SAN_FLAGS)]
        cc_flags = SAN_FLAGS
    return build, libdir, make_args, cc_flags


def make(target, destdir, prefix=PREFIX):
    build, libdir, make_args, _ = build_variant()
    r = subprocess.run(
        ["make", "--no-print-directory", "-C", ROOT, "BUILD=" + build,
         "LIBDIR=" + libdir, "PREFIX=" + prefix, "DESTDIR=" + destdir]
        + make_args + [target],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=600)
    if r.returncode != 0:
        raise AssertionError("make %s failed (%d):\n%s"
                             % (target, r.returncode, r.stdout[-4000:]))
    return r.stdout


def tree(root):
    """{relative path: (kind, mode or link target)} of every file and
    symlink under root; directories are listed separately."""
    files, dirs = {}, set()
    for top, dnames, fnames in os.walk(root):
        for d in dnames:
            p = os.path.join(top, d)
            dirs.add(os.path.relpath(p, root))
        for f in fnames:
            p = os.path.join(top, f)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                files[rel] = ("link", os.readlink(p))
            else:
                files[rel] = ("file", os.stat(p).st_mode & 0o7777)
    return files, dirs


def expected_files():
    """What make install must write, relative to DESTDIR, with the mode
    of each file or the target of each symlink."""
    p = PREFIX.lstrip("/")
    exp = {
        p + "/bin/wschatd": ("file", 0o755),
        p + "/bin/wschat-bench": ("file", 0o755),
        p + "/lib/libwschat.so." + VERSION: ("file", 0o755),
        p + "/lib/libwschat.so.0": ("link", "libwschat.so." + VERSION),
        p + "/lib/libwschat.so": ("link", "libwschat.so.0"),
        p + "/lib/libwschat.a": ("file", 0o644),
        p + "/lib/pkgconfig/libwschat.pc": ("file", 0o644),
        p + "/include/wschat.h": ("file", 0o644),
        p + "/share/wschat/wschatd.service": ("file", 0o644),
        p + "/share/man/man1/wschatd.1": ("file", 0o644),
        p + "/share/man/man1/wschat-bench.1": ("file", 0o644),
        p + "/share/man/man7/wschat-protocol.7": ("file", 0o644),
    }
    # The browser client and the section 3 pages are whatever the tree
    # has (pages are added with the API); the fixed ones must be there.
    web = sorted(os.listdir(os.path.join(ROOT, "examples", "web")))
    for name in ("index.html", "app.js", "style.css"):
        assert name in web, web
    for name in web:
        exp[p + "/share/wschat/web/" + name] = ("file", 0o644)
    man3 = sorted(os.path.basename(f)
                  for f in glob.glob(os.path.join(ROOT, "man", "*.3")))
    for name in ("libwschat.3", "wschat_server_new.3", "wschat_server_free.3"):
        assert name in man3, man3
    for name in man3:
        exp[p + "/share/man/man3/" + name] = ("file", 0o644)
    return exp


def read_line(proc, timeout):
    """The first stdout line of proc, or an AssertionError."""
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.1)
        if r:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            if b"\n" in buf:
                return buf[:buf.index(b"\n") + 1].decode()
    raise AssertionError("no line from %r within %ss (got %r, exit %r)"
                         % (proc.args, timeout, buf, proc.poll()))


def stop(proc):
    """SIGTERM, and the exit status (killed after 5 s)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


async def echo_roundtrip(port):
    async with websockets.connect("ws://127.0.0.1:%d/" % port,
                                  open_timeout=5) as ws:
        await ws.send("h\u00e9llo, installed library")
        text = await asyncio.wait_for(ws.recv(), 5)
        await ws.send(b"\x00\x01\xfe\xff")
        data = await asyncio.wait_for(ws.recv(), 5)
    return text, data


def needed(binary):
    """The DT_NEEDED entries of an ELF file."""
    out = subprocess.run(["readelf", "-d", binary], capture_output=True,
                         text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", out)


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="wschat-install-")
        cls.dest = os.path.join(cls.tmp.name, "dest")
        cls.output = make("install", cls.dest)
        cls.prefix = cls.dest + PREFIX
        cls.pc_env = dict(os.environ,
                          PKG_CONFIG_PATH=os.path.join(cls.prefix, "lib",
                                                       "pkgconfig"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def pkg_config(self, *args):
        r = subprocess.run(
            ["pkg-config", "--define-variable=prefix=" + self.prefix]
            + list(args) + ["libwschat"],
            env=self.pc_env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.split()

    def build_echo(self, name, flags, static_wschat=False):
        _, _, _, cc_flags = build_variant()
        exe = os.path.join(self.tmp.name, name)
        if static_wschat:
            # The static archive, by name, in place of -lwschat (there is a
            # libwschat.so beside it that -lwschat would pick).
            self.assertIn("-lwschat", flags)
            flags = ["-l:libwschat.a" if f == "-lwschat" else f
                     for f in flags]
        r = subprocess.run(
            # The compiler's default dialect: <uv.h> needs POSIX types
            # that strict -std=c11 hides without a feature macro.
            ["cc", "-Wall", "-Wextra", "-Werror",
             os.path.join(ROOT, "examples", "echo.c"), "-o", exe]
            + cc_flags + flags,
            cwd=self.tmp.name, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return exe

    def run_echo(self, exe, env):
        proc = subprocess.Popen([exe, "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        try:
            line = read_line(proc, 5)
            m = re.fullmatch(r"echo: listening on 127\.0\.0\.1:(\d+)\n", line)
            self.assertIsNotNone(m, line)
            with open("/proc/%d/maps" % proc.pid, encoding="utf-8") as f:
                maps = f.read()
            text, data = asyncio.run(echo_roundtrip(int(m.group(1))))
            self.assertEqual(text, "h\u00e9llo, installed library")
            self.assertEqual(data, b"\x00\x01\xfe\xff")
        finally:
            rc = stop(proc)
            err = proc.stderr.read().decode("utf-8", "replace")
            proc.stdout.close()
            proc.stderr.close()
        self.assertEqual(rc, 0, err)
        return maps

    # ------------------------------------------------------------- files
    def test_installed_files_are_exactly_the_expected_ones(self):
        files, dirs = tree(self.dest)
        exp = expected_files()
        self.assertEqual(sorted(set(files) - set(exp)), [], "unexpected")
        self.assertEqual(sorted(set(exp) - set(files)), [], "missing")
        self.assertEqual(files, exp)
        # The installed copies are the build's and the tree's.
        build, libdir, _, _ = build_variant()
        for src, dst in (
                (os.path.join(libdir, "libwschat.so." + VERSION),
                 "lib/libwschat.so." + VERSION),
                (os.path.join(libdir, "libwschat.a"), "lib/libwschat.a"),
                (os.path.join(build, "cmd", "wschatd"), "bin/wschatd"),
                (os.path.join(ROOT, "include", "wschat.h"),
                 "include/wschat.h"),
                (os.path.join(ROOT, "examples", "web", "index.html"),
                 "share/wschat/web/index.html")):
            with open(src, "rb") as a, \
                    open(os.path.join(self.prefix, dst), "rb") as b:
                self.assertTrue(a.read() == b.read(), dst)
        # The shared library's SONAME is the symlink's name.
        out = subprocess.run(
            ["readelf", "-d", os.path.join(self.prefix, "lib",
                                           "libwschat.so." + VERSION)],
            capture_output=True, text=True, check=True).stdout
        self.assertIn("Library soname: [libwschat.so.0]", out)
        # A DESTDIR install only hints at ldconfig for live installs.
        self.assertNotIn("ldconfig", self.output)

    def test_pkg_config_file(self):
        with open(os.path.join(self.prefix, "lib", "pkgconfig",
                               "libwschat.pc"), encoding="utf-8") as f:
            pc = f.read()
        for line in ("prefix=/usr/local\n", "libdir=${prefix}/lib\n",
                     "includedir=${prefix}/include\n",
                     "Version: %s\n" % VERSION, "Requires: libuv\n",
                     "Requires.private: libcrypto jansson\n",
                     "Cflags: -I${includedir}\n",
                     "Libs: -L${libdir} -lwschat\n",
                     "Libs.private: -lhttp_parser\n"):
            self.assertIn(line, pc)
        self.assertEqual(self.pkg_config("--modversion"), [VERSION])
        flags = self.pkg_config("--cflags", "--libs")
        self.assertEqual(flags[:3], ["-I" + self.prefix + "/include",
                                     "-L" + self.prefix + "/lib",
                                     "-lwschat"])
        self.assertIn("-luv", flags)
        for lib in ("-lcrypto", "-ljansson", "-lhttp_parser"):
            self.assertNotIn(lib, flags)
        static = self.pkg_config("--static", "--libs")
        for lib in ("-lwschat", "-luv", "-lcrypto", "-ljansson",
                    "-lhttp_parser"):
            self.assertIn(lib, static)
        # The sysroot way reaches the same files, with libuv's system
        # directories prefixed too.
        r = subprocess.run(
            ["pkg-config", "--cflags", "--libs", "libwschat"],
            env=dict(self.pc_env, PKG_CONFIG_SYSROOT_DIR=self.dest),
            capture_output=True, text=True, check=True)
        self.assertEqual(r.stdout.split()[0], "-I" + self.prefix + "/include")
        self.assertIn("-L" + self.prefix + "/lib", r.stdout.split())

    # ------------------------------------------------------------ linking
    def test_echo_built_with_pkg_config_uses_the_installed_library(self):
        exe = self.build_echo("echo-shared",
                              self.pkg_config("--cflags", "--libs"))
        self.assertIn("libwschat.so.0", needed(exe))
        libdir = os.path.join(self.prefix, "lib")
        maps = self.run_echo(exe, dict(os.environ, LD_LIBRARY_PATH=libdir))
        self.assertIn(os.path.join(libdir, "libwschat.so." + VERSION), maps)

    def test_echo_linked_statically_with_pkg_config_static(self):
        exe = self.build_echo(
            "echo-static", self.pkg_config("--static", "--cflags", "--libs"),
            static_wschat=True)
        deps = needed(exe)
        self.assertFalse([d for d in deps if "wschat" in d], deps)
        # (jansson is not among them: echo uses no chat, so no archive
        # member that needs it is linked.)
        for lib in ("libuv.so.1", "libcrypto.so.3"):
            self.assertIn(lib, deps)
        self.assertTrue([d for d in deps if d.startswith("libhttp_parser")],
                        deps)
        maps = self.run_echo(exe, dict(os.environ, LD_LIBRARY_PATH=""))
        self.assertNotIn("libwschat.so", maps)

    # ------------------------------------------------------------ wschatd
    def test_installed_wschatd_looks_for_the_installed_client(self):
        web = PREFIX + "/share/wschat/web"
        wschatd = os.path.join(self.prefix, "bin", "wschatd")
        with open(wschatd, "rb") as f:
            self.assertIn(web.encode() + b"\0", f.read())
        self.assertTrue(os.path.isfile(os.path.join(self.dest + web,
                                                    "index.html")))
        proc = subprocess.Popen([wschatd, "--host", "127.0.0.1", "--port",
                                 "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            line = read_line(proc, 5)
            m = re.fullmatch(r"wschatd: serving http://127\.0\.0\.1:(\d+)/\n",
                             line)
            self.assertIsNotNone(m, line)
            with urllib.request.urlopen("http://127.0.0.1:%s/healthz"
                                        % m.group(1), timeout=5) as r:
                self.assertEqual((r.status, r.read()), (200, b"ok\n"))
        finally:
            rc = stop(proc)
            err = proc.stderr.read().decode()
            proc.stdout.close()
            proc.stderr.close()
        self.assertEqual(rc, 0, err)
        # Staged under DESTDIR, the binary cannot find its client (nor an
        # in-tree one beside it); it names the one place it looks, unless
        # this machine has a client installed there.
        if os.path.isdir(web):
            self.assertIn(" info web root %s\n" % os.path.realpath(web), err)
        else:
            self.assertIn(" warn no web root (neither %s nor the in-tree "
                          "examples/web exists)" % web, err)

    def test_installed_man_pages_render(self):
        man = os.path.join(self.prefix, "share", "man")
        pages = sorted(glob.glob(os.path.join(man, "man*", "*.[1-8]")))
        self.assertGreater(len(pages), 20)
        for page in pages:
            with self.subTest(page=os.path.relpath(page, man)):
                # man(1) reads .so requests relative to the section root.
                r = subprocess.run(["groff", "-man", "-t", "-ww", "-z",
                                    os.path.relpath(page, man)],
                                   cwd=man, capture_output=True, text=True)
                self.assertEqual((r.returncode, r.stderr), (0, ""))
        with open(os.path.join(man, "man3", "wschat_server_free.3"),
                  encoding="utf-8") as f:
            self.assertEqual(f.read().strip().splitlines()[-1],
                             ".so man3/wschat_server_new.3")

    def test_systemd_unit(self):
        unit = os.path.join(self.prefix, "share", "wschat", "wschatd.service")
        sections, keys = [], {}
        with open(unit, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith("["):
                    sections.append(line)
                    continue
                k, sep, v = line.partition("=")
                self.assertEqual(sep, "=", line)
                keys.setdefault((sections[-1], k), []).append(v)
        self.assertEqual(sections, ["[Unit]", "[Service]", "[Install]"])
        s = "[Service]"
        for k, v in (("DynamicUser", "yes"), ("ProtectSystem", "strict"),
                     ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                     ("NoNewPrivileges", "yes"), ("CapabilityBoundingSet", ""),
                     ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
                     ("SystemCallFilter", "@system-service"),
                     ("MemoryDenyWriteExecute", "yes"),
                     ("LimitNOFILE", "65536"), ("Restart", "on-failure")):
            self.assertEqual(keys.get((s, k)), [v], k)
        self.assertEqual(keys[("[Install]", "WantedBy")],
                         ["multi-user.target"])
        # wschatd has no SIGHUP handler, so there is no reload.
        self.assertNotIn((s, "ExecReload"), keys)
        # ExecStart runs the installed binary with flags it accepts.
        argv = keys[(s, "ExecStart")][0].split()
        self.assertEqual(argv[0], PREFIX + "/bin/wschatd")
        self.assertEqual(argv[1:3], ["--host", "127.0.0.1"])
        r = subprocess.run([os.path.join(self.prefix, "bin", "wschatd")]
                           + argv[1:] + ["--help"], capture_output=True,
                           text=True)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertTrue(r.stdout.startswith("usage: wschatd"))


class Uninstall(unittest.TestCase):
    def test_uninstall_removes_every_installed_file(self):
        tmp = tempfile.TemporaryDirectory(prefix="wschat-uninstall-")
        self.addCleanup(tmp.cleanup)
        dest = os.path.join(tmp.name, "dest")
        # Something of someone else's in the same tree stays.
        other = os.path.join(dest + PREFIX, "share", "man", "man1", "other.1")
        os.makedirs(os.path.dirname(other))
        with open(other, "w", encoding="utf-8") as f:
            f.write(".TH OTHER 1\n")
        make("install", dest)
        files, _ = tree(dest)
        self.assertEqual(len(files), len(expected_files()) + 1)
        make("uninstall", dest)
        files, dirs = tree(dest)
        self.assertEqual(files, {"usr/local/share/man/man1/other.1":
                                 ("file", 0o644)})
        # Only empty directories remain, and none under share/wschat.
        self.assertFalse([d for d in dirs if "share/wschat" in d], dirs)
        self.assertIn("usr/local/lib/pkgconfig", dirs)
        # A second uninstall finds nothing to do and still succeeds.
        make("uninstall", dest)
        shutil.rmtree(dest)


if __name__ == "__main__":
    unittest.main()
