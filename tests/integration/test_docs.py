"""The man pages: each lints clean with groff, and every public function
and callback type of include/wschat.h is documented in libwschat(3) (the
overview) and has a page of its own in man/: its family's page, or a
one-line `.so man3/FAMILY.3` link to it, whose SYNOPSIS holds the
function's exact prototype. wschatd(1) documents every flag of wschatd,
and wschat-protocol(7) every message type and error code of the protocol.

The pages are kept flat in man/ and installed into man1, man3 and man7;
the .so links name the installed path (man3/...), so the lint runs from a
directory whose man1, man3 and man7 point at man/, as man(1) would read
them from the installed tree."""

import glob
import os
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def public_functions():
    with open(os.path.join(ROOT, "include", "wschat.h"), encoding="utf-8") as f:
        header = f.read()
    names = set(re.findall(r"WSCHAT_EXTERN[^;(]*?\b(wschat_\w+)\s*\(", header,
                           re.S))
    names |= set(re.findall(r"typedef \w+ \(\*(wschat_\w+)\)", header))
    return names


def c_tokens(text):
    """C text as a list of tokens: identifiers and numbers, and every other
    non-space character on its own."""
    return re.findall(r"\w+|\S", text)


def header_prototypes():
    """{name: tokens of its declaration} for every function (without
    WSCHAT_EXTERN) and every callback typedef of wschat.h."""
    with open(os.path.join(ROOT, "include", "wschat.h"), encoding="utf-8") as f:
        header = re.sub(r"/\*.*?\*/", " ", f.read(), flags=re.S)
    protos = {}
    for m in re.finditer(r"^WSCHAT_EXTERN\s+([^;]*;)", header, re.M):
        name = re.search(r"\b(wschat_\w+)\s*\(", m.group(1)).group(1)
        protos[name] = c_tokens(m.group(1))
    for m in re.finditer(r"^typedef [^;]*?\(\*(wschat_\w+)\)\s*\([^;]*;",
                         header, re.M):
        protos[m.group(1)] = c_tokens(m.group(0))
    return protos


def roff_text(line):
    """The text of one roff line of a SYNOPSIS: the arguments of a font
    macro joined as it prints them, escapes resolved; "" for other
    requests and comments."""
    m = re.match(r"^\.(B|I|BI|IB|BR|RB|IR|RI)(?:\s+(.*))?$", line)
    if m:
        args = [quoted or bare for quoted, bare in
                re.findall(r'"([^"]*)"|(\S+)', m.group(2) or "")]
        text = (" " if m.group(1) in ("B", "I") else "").join(args)
    elif line.startswith((".", "'")):
        return ""
    else:
        text = line
    text = re.sub(r"\\f[BIRP]", "", text)
    for esc, rep in (("\\-", "-"), ("\\e", "\\"), ("\\(dq", '"'),
                     ("\\&", ""), ("\\~", " ")):
        text = text.replace(esc, rep)
    return text


def section(page_text, title):
    """The source lines of one .SH section of a page."""
    lines, inside = [], False
    for line in page_text.splitlines():
        if line.startswith(".SH"):
            inside = line[3:].strip().strip('"') == title
            continue
        if inside:
            lines.append(line)
    return lines


def read_page(name):
    """(file name, text) of man/NAME.3, following a .so link."""
    path = os.path.join(ROOT, "man", name + ".3")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.fullmatch(r"\.so man3/([\w.-]+\.3)\n", text)
    if m:
        with open(os.path.join(ROOT, "man", m.group(1)),
                  encoding="utf-8") as f:
            return m.group(1), f.read()
    return name + ".3", text


def contains(tokens, part):
    n = len(part)
    return any(tokens[i:i + n] == part for i in range(len(tokens) - n + 1))


class ManPages(unittest.TestCase):
    def test_pages_lint_clean(self):
        pages = sorted(glob.glob(os.path.join(ROOT, "man", "*.[1-8]")))
        self.assertGreaterEqual(len(pages), 3, pages)
        with tempfile.TemporaryDirectory(prefix="wschat-man-") as tree:
            for sec in ("man1", "man3", "man7"):
                os.symlink(os.path.join(ROOT, "man"), os.path.join(tree, sec))
            for page in pages:
                name = os.path.basename(page)
                with self.subTest(page=name):
                    rel = "man%s/%s" % (name.rsplit(".", 1)[1], name)
                    r = subprocess.run(
                        ["groff", "-man", "-t", "-ww", "-z", rel], cwd=tree,
                        capture_output=True, text=True)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertEqual(r.stderr, "")

    def test_so_links_name_a_page_of_their_family(self):
        links = 0
        for path in sorted(glob.glob(os.path.join(ROOT, "man", "*.3"))):
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if ".so" not in text:
                continue
            name = os.path.basename(path)[:-2]
            with self.subTest(page=name):
                links += 1
                # One line, as man-db wants a link page.
                m = re.fullmatch(r"\.so man3/(wschat_\w+)\.3\n", text)
                self.assertIsNotNone(m, text)
                target, page = read_page(name)
                self.assertEqual(target, m.group(1) + ".3")
                self.assertNotIn(".so man3/", page)
                # The family page's NAME lists the linked name (whatis).
                self.assertIn(name, re.split(r"[ ,]+",
                                             " ".join(section(page, "NAME"))))
        self.assertGreater(links, 50)

    def test_every_public_function_has_a_page_with_its_prototype(self):
        protos = header_prototypes()
        functions = sorted(n for n in protos if protos[n][0] != "typedef")
        self.assertEqual(set(functions) - public_functions(), set())
        self.assertGreater(len(functions), 80)
        for name in functions:
            with self.subTest(function=name):
                path = os.path.join(ROOT, "man", name + ".3")
                self.assertTrue(os.path.exists(path),
                                "no man/%s.3 (a page or a .so link)" % name)
                target, page = read_page(name)
                for title in ("NAME", "SYNOPSIS", "DESCRIPTION",
                              "RETURN VALUE", "ERRORS", "SEE ALSO"):
                    self.assertTrue(section(page, title),
                                    "%s has no %s" % (target, title))
                self.assertIn(name, re.split(r"[ ,]+",
                                             " ".join(section(page, "NAME"))))
                synopsis = c_tokens("\n".join(
                    roff_text(line) for line in section(page, "SYNOPSIS")))
                self.assertTrue(contains(synopsis, c_tokens(
                    "#include <wschat.h>")), target)
                self.assertTrue(
                    contains(synopsis, protos[name]),
                    "the SYNOPSIS of %s lacks %s" % (target,
                                                     " ".join(protos[name])))
                self.assertTrue(re.search(r"\\fB%s\\fP\s*\(|\.BR %s \(" % (
                    name, name), page) or re.search(
                        r"^\.BR %s \(\)" % name, page, re.M),
                    "%s does not describe %s()" % (target, name))

    def test_overview_lists_every_family_page(self):
        families = []
        for path in sorted(glob.glob(os.path.join(ROOT, "man", "wschat_*.3"))):
            with open(path, encoding="utf-8") as f:
                if not f.read().startswith(".so "):
                    families.append(os.path.basename(path)[:-2])
        self.assertGreaterEqual(len(families), 15)
        see_also = section(read_man("libwschat.3"), "SEE ALSO")
        for name in families:
            self.assertTrue(any(re.match(r"^\.BR %s \(3\)" % name, line)
                                for line in see_also), name)

    def test_every_callback_type_is_in_a_synopsis(self):
        protos = header_prototypes()
        synopses = []
        for path in glob.glob(os.path.join(ROOT, "man", "wschat_*.3")):
            with open(path, encoding="utf-8") as f:
                synopses.append(c_tokens("\n".join(
                    roff_text(line) for line in section(f.read(),
                                                        "SYNOPSIS"))))
        types = sorted(n for n in protos if protos[n][0] == "typedef")
        self.assertGreaterEqual(len(types), 10)
        for name in types:
            with self.subTest(type=name):
                self.assertTrue(any(contains(s, protos[name])
                                    for s in synopses), name)

    def test_every_public_function_is_documented(self):
        names = public_functions()
        self.assertGreater(len(names), 80)
        with open(os.path.join(ROOT, "man", "libwschat.3"),
                  encoding="utf-8") as f:
            page = f.read()
        missing = sorted(n for n in names
                         if not re.search(r"\b%s\b" % re.escape(n), page))
        self.assertEqual(missing, [])



def wschatd_binary():
    build = os.environ.get("BUILD", "build")
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    return os.path.join(build, "cmd", "wschatd")


def read_man(name):
    with open(os.path.join(ROOT, "man", name), encoding="utf-8") as f:
        return f.read()


def option_table(*path):
    """The long options of a program's getopt_long table."""
    with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
        return re.findall(r'\{"([a-z][a-z-]*)", (?:required|no)_argument',
                          f.read())


def help_text(binary):
    r = subprocess.run([binary, "--help"], capture_output=True, text=True,
                       timeout=10)
    if r.returncode != 0:
        raise AssertionError("%s --help: exit %d: %s" % (binary, r.returncode,
                                                        r.stderr))
    return r.stdout


def assert_options_on_page(test, table, page):
    """Every option is in the page's SYNOPSIS and has its own .TP entry
    in OPTIONS."""
    synopsis = "\n".join(section(page, "SYNOPSIS"))
    options = section(page, "OPTIONS")
    for name in table:
        with test.subTest(option=name):
            flag = "\\-\\-" + name.replace("-", "\\-")
            test.assertIn(flag, synopsis)
            test.assertTrue(any(
                options[i] == ".TP" and re.match(
                    r"^\.BI? %s(\s|$)" % re.escape(flag), options[i + 1])
                for i in range(len(options) - 1)), name)


class Wschatd(unittest.TestCase):
    """wschatd(1) against the program: its option table, its --help, and
    the sections a daemon's page needs."""

    def test_every_option_is_documented(self):
        table = option_table("cmd", "wschatd", "main.c")
        helped = re.findall(r"^  --([a-z][a-z-]*)",
                            help_text(wschatd_binary()), re.M)
        self.assertEqual(sorted(helped), sorted(table))
        self.assertGreaterEqual(len(table), 13)
        assert_options_on_page(self, table, read_man("wschatd.1"))

    def test_signals_endpoints_exit_status_and_examples(self):
        page = read_man("wschatd.1")
        signals = "\n".join(section(page, "SIGNALS"))
        for sig in ("SIGINT", "SIGTERM", "SIGPIPE"):
            self.assertIn(sig, signals)
        endpoints = "\n".join(section(page, "HTTP ENDPOINTS"))
        for path in ("/chat", "/healthz", "/metrics"):
            self.assertIn(".B %s\n" % path, endpoints)
        status = section(page, "EXIT STATUS")
        self.assertEqual([status[i + 1] for i in range(len(status) - 1)
                          if status[i] == ".TP"], [".B 0", ".B 1", ".B 2"])
        self.assertIn("wschatd \\-\\-host", "\n".join(section(page,
                                                               "EXAMPLES")))


class WschatBench(unittest.TestCase):
    """wschat-bench(1) against the program: every option of its table
    and of its --help, the keys of every mode's summary line as the
    smoke tests and `make bench` parse them, the environment, and the
    exit statuses."""

    def page(self):
        return read_man("wschat-bench.1")

    def test_every_option_is_documented(self):
        table = option_table("cmd", "wschat-bench", "main.c")
        self.assertGreaterEqual(len(table), 17)
        bench = os.path.join(os.path.dirname(wschatd_binary()), "wschat-bench")
        helped = set(re.findall(r"--([a-z][a-z-]*)", help_text(bench)))
        self.assertEqual(sorted(helped | {"help"}), sorted(table))
        assert_options_on_page(self, table, self.page())

    def test_summary_keys_environment_and_exit_status(self):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from test_bench_smoke import KEYS
        page = self.page()
        summary = section(page, "SUMMARY LINE")
        for mode, keys in KEYS.items():
            with self.subTest(mode=mode):
                i = summary.index(".B %s" % mode)
                entry = []
                for line in summary[i + 1:]:
                    if line.startswith((".TP", ".PP")):
                        break
                    entry.append(re.sub(r"^\.BR? (\S+)(?: ,)?$", r"\1", line))
                self.assertEqual(entry, keys)
        # Every variable the generator (or the library code it runs)
        # reads has its entry.
        env = section(page, "ENVIRONMENT")
        names = set()
        for d in ("cmd/wschat-bench", "lib/net"):
            for f in glob.glob(os.path.join(ROOT, d, "*.c")):
                with open(f) as fh:
                    names |= set(re.findall(r'getenv\("(\w+)"\)', fh.read()))
        self.assertIn("WSCHAT_BENCH_RECV_BUFFERS", names)
        for name in sorted(names):
            with self.subTest(variable=name):
                self.assertEqual([env[i + 1] for i in range(len(env) - 1)
                                  if env[i] == ".TP" and
                                  env[i + 1] == ".B " + name],
                                 [".B " + name])
        status = section(page, "EXIT STATUS")
        self.assertEqual([status[i + 1] for i in range(len(status) - 1)
                          if status[i] == ".TP"], [".B 0", ".B 1", ".B 2"])


class Protocol(unittest.TestCase):
    """wschat-protocol(7) names every request, server message and error
    code of the chat protocol."""

    def test_every_message_type_and_error_code_is_described(self):
        page = read_man("wschat-protocol.7")
        json = section(page, "JSON DIALECT")
        # Table rows: "name\tT{" or "joined, left\tT{".
        rows = {name for line in json if "\t" in line
                for name in line.split("\t")[0].split(", ")}
        for t in ("join", "leave", "say", "whisper", "nick", "history", "who",
                  "rooms", "welcome", "message", "joined", "left", "renamed",
                  "members", "ack", "error"):
            self.assertIn(t, rows)
        with open(os.path.join(ROOT, "lib", "chat", "message.c"),
                  encoding="utf-8") as f:
            codes = re.findall(r'\[WSCHAT__CHAT_\w+\] = \{"(\w+)"', f.read())
        codes.remove("ok")
        self.assertGreaterEqual(len(codes), 10)
        for code in codes:
            with self.subTest(code=code):
                self.assertIn(code, rows)
        commands = "\n".join(section(page, "TEXT DIALECT"))
        for cmd in ("/nick", "/join", "/who", "/rooms", "/msg", "/help"):
            self.assertIn("\n%s" % cmd, commands)


if __name__ == "__main__":
    unittest.main()
