#!/usr/bin/env python3
"""Rebuild calibration/calibration.txt (see README.md): the classics sample plus passages of
public-domain / WordNet-licensed text taken from Debian 12 packages.

usage: python3 calibration/make_calibration.py CLASSICS_SAMPLE OUT WORKDIR [EXCLUDE...]
  CLASSICS_SAMPLE  the 164,390-byte paragraph sample of the demo model's training books
                   (../shared/text/calibration.txt, = calibration/calibration.txt before)
  EXCLUDE          evaluation texts: a paragraph sharing 50 letters in a row with one of them
                   (case and everything but a-z ignored) is left out
Needs: apt-get (Debian 12 sources), dpkg-deb, Rscript (r-base-core) for the two R data sets.
Deterministic: the same packages and seed give the same bytes.
"""
import glob, gzip, os, random, re, subprocess, sys

PACKAGES = {  # Debian 12 binary packages and the versions the bundled file was made from
    'r-cran-janeaustenr': '1.0.0-1', 'r-cran-tokenizers': '0.3.0-1', 'dict-devil': '1.0-13.1',
    'dict-jargon': '4.4.7-3.1', 'wordnet-base': '1:3.0-37'}
BUDGET = {'austen': 150, 'mobydick': 110, 'devil': 60, 'jargon': 150, 'wordnet': 150}  # KB
SEED = 5


def paras(text):
    return [' '.join(p.split()) for p in re.split(r'\n\s*\n', text) if p.strip()]


def unpack(work):
    x = os.path.join(work, 'x')
    for pkg, ver in PACKAGES.items():
        d = os.path.join(x, pkg)
        if os.path.isdir(d):
            continue
        subprocess.run(['apt-get', 'download', f'{pkg}={ver}'], cwd=work, check=True)
        deb = glob.glob(os.path.join(work, pkg + '_*.deb'))[0]
        os.makedirs(d)
        subprocess.run(['dpkg-deb', '-x', deb, d], check=True)
    return x


def r_texts(x, work):
    """Jane Austen's six novels and Moby-Dick: R data sets, one line per element."""
    out = os.path.join(work, 'r')
    os.makedirs(out, exist_ok=True)
    lib = 'usr/lib/R/site-library'
    script = f'''
e <- new.env(); lazyLoad("{x}/r-cran-janeaustenr/{lib}/janeaustenr/data/Rdata", envir = e)
for (n in ls(e)) writeLines(get(n, e), file.path("{out}", paste0("austen-", n, ".txt")), useBytes = TRUE)
e <- new.env(); lazyLoad("{x}/r-cran-tokenizers/{lib}/tokenizers/data/Rdata", envir = e)
writeLines(get("mobydick", e), "{out}/mobydick.txt", useBytes = TRUE)
'''
    subprocess.run(['Rscript', '-e', script], check=True, stdout=subprocess.DEVNULL)
    austen = []
    for fn in sorted(glob.glob(f'{out}/austen-*.txt')):
        austen += [p for p in paras(open(fn, encoding='utf-8').read()) if len(p) >= 40]
    t = open(f'{out}/mobydick.txt', encoding='utf-8-sig').read()
    t = t[t.index('*** START OF'):]
    t = t[t.index('\n') + 1:t.index('End of Project Gutenberg')]  # Gutenberg header/footer off
    moby = [p for p in paras(t) if len(p) >= 40 and 'Transcriber' not in p]
    return austen, moby


def devil(x):
    """Bierce's entries from ABASEMENT on; verse keeps its lines, signatures dropped."""
    t = gzip.open(f'{x}/dict-devil/usr/share/dictd/devil.dict.dz', 'rt', encoding='utf-8').read()
    t = t[t.index('ABASEMENT, n.'):]
    ps = []
    for blk in re.split(r'\n\s*\n', t):
        lines = [l for l in blk.split('\n') if l.strip() and not re.fullmatch(r'\s{20,}\S.*', l)]
        if not lines:
            continue
        if all(l.startswith('    ') for l in lines):
            ps.append('\n'.join(l.strip() for l in lines))
        else:
            p = ' '.join(' '.join(lines).split())
            if not re.fullmatch(r'[A-Z. ]+', p):
                ps.append(p)
    return ps


def dict_entries(path):
    ents, cur = [], []
    for line in gzip.open(path, 'rt', encoding='utf-8').read().split('\n'):
        if line and not line[0].isspace():
            if cur:
                ents.append(cur)
            cur = [line]
        else:
            cur.append(line)
    if cur:
        ents.append(cur)
    return [e for e in ents if not e[0].startswith('00-database')]


def jargon(x):
    """'headword: first paragraph', further paragraphs; pronunciations and {braces} off."""
    ps = []
    for e in dict_entries(f'{x}/dict-jargon/usr/share/dictd/jargon.dict.dz'):
        body = '\n'.join(l for l in e[1:] if not re.match(r'\s*/.*/,', l))
        first = True
        for p in paras(body):
            p = re.sub(r'\{\s*([^}]*)\}', r'\1', p)
            if re.fullmatch(r'\[[^]]*\]', p) or len(p) < 40:
                continue
            ps.append(f'{e[0].strip()}: {p}' if first else p)
            first = False
    return ps


def wordnet(x):
    """'word: gloss' for every synset, shuffled, six to a paragraph."""
    ps = []
    for pos in ('noun', 'verb', 'adj', 'adv'):
        for line in open(f'{x}/wordnet-base/usr/share/wordnet/data.{pos}', encoding='latin-1'):
            if line.startswith('  ') or '| ' not in line:
                continue
            f = line.split()
            words = f[4:4 + 2 * int(f[3], 16):2]
            ps.append(words[0].replace('_', ' ') + ': ' + line.split('| ', 1)[1].strip())
    random.Random(1).shuffle(ps)
    return ['\n'.join(ps[i:i + 6]) for i in range(0, len(ps), 6)]


def passages(ps, budget, rng):
    """Runs of consecutive paragraphs (1-3 KB each) at random places, no overlap, until
    budget bytes are taken."""
    used, out, n, tries = set(), [], 0, 0
    while n < budget and tries < 100000:
        tries += 1
        target, i = rng.randint(1000, 3000), rng.randrange(len(ps))
        j, m = i, 0
        while j < len(ps) and m < target and j not in used:
            m += len(ps[j])
            j += 1
        if j == i or any(k in used for k in range(i, j)):
            continue
        used.update(range(i, j))
        out.append('\n\n'.join(ps[i:j]))
        n += sum(len(p.encode()) for p in ps[i:j])
    return out


def norm(t):
    return re.sub(r'[^a-z]+', ' ', t.lower())


def overlaps(p, grams, k=50):
    n = norm(p)
    return any(n[i:i + k] in grams for i in range(max(1, len(n) - k + 1)))


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    classics, out, work = sys.argv[1], sys.argv[2], sys.argv[3]
    grams = set()
    for fn in sys.argv[4:]:
        t = norm(open(fn, encoding='utf-8', errors='replace').read())
        grams.update(t[i:i + 50] for i in range(len(t) - 49))
    os.makedirs(work, exist_ok=True)
    x = unpack(work)
    austen, moby = r_texts(x, work)
    kinds = {'austen': austen, 'mobydick': moby, 'devil': devil(x), 'jargon': jargon(x),
             'wordnet': wordnet(x)}
    rng = random.Random(SEED)
    out_ps, cur, m = [], [], 0
    dropped = 0
    for p in [p.strip() for p in open(classics, encoding='utf-8').read().split('\n\n') if p.strip()]:
        if overlaps(p, grams):
            dropped += 1
            continue
        cur.append(p)  # the classics sample whole, in passages of about 2 KB
        m += len(p)
        if m > 2000:
            out_ps.append('\n\n'.join(cur))
            cur, m = [], 0
    if cur:
        out_ps.append('\n\n'.join(cur))
    for k in ('austen', 'mobydick', 'devil', 'jargon', 'wordnet'):
        for q in passages(kinds[k], BUDGET[k] * 1000, rng):
            if overlaps(q, grams):
                dropped += 1
            else:
                out_ps.append(q)
    print(f'{dropped} paragraphs/passages left out (shared with {sys.argv[4:]})', file=sys.stderr)
    rng.shuffle(out_ps)
    with open(out, 'w', encoding='utf-8') as f:
        f.write('\n\n'.join(out_ps) + '\n')


if __name__ == '__main__':
    main()
