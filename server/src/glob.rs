//! Redis's glob patterns (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes) for `KEYS`, `SCAN
//! MATCH`, `PSUBSCRIBE`, `PUBSUB CHANNELS`, `CONFIG GET` and ACL key and channel patterns.
//!
//! Redis's `stringmatchlen` backtracks at every `*`. Before CVE-2022-36021 a pattern
//! like `a*a*a*…b` took time exponential in its stars; Redis now cuts the search short
//! once the rest of the pattern cannot match anywhere, and gives up past 1000 nested
//! stars. Its cost is still the product of the pattern's and the string's lengths.
//!
//! We do not backtrack at all. Every item between two stars consumes exactly one byte, so
//! a pattern is a list of fixed-width *segments* separated by stars: the first must match
//! at the start, the last at the end, and each one in between at its leftmost place after
//! the one before (taking the leftmost place never loses a match that a later place would
//! find). The string is scanned once per segment, left to right, without going back past
//! a found segment; a literal first byte is found with `memchr`. So the cost is at most
//! the string's length times the longest segment, never a product with the number of
//! stars, and the stack depth is constant.
//!
//! Byte-for-byte what Redis answers, its quirks included (tested against `redis-server`):
//! an empty string matches only the empty pattern; a class without `]` runs to the end of
//! the pattern; `[a-]` is the range `a`..`]`; an escape inside a class compares exactly
//! even when matching without case; a pattern with more than 1000 stars (runs of stars
//! count once, a final run not at all) matches nothing, as Redis's nesting limit decides.

/// Redis's limit on nested stars (`stringmatchlen_impl`'s `nesting`).
const MAX_NESTING: usize = 1000;

/// A compiled pattern: compile once, match many strings (an ACL user keeps its key and
/// channel patterns compiled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pat: Box<[u8]>,
    nocase: bool,
    /// Byte ranges of the pattern between stars, with how many bytes each consumes.
    segs: Box<[Seg]>,
    /// More stars than Redis's nesting limit allows: nothing matches.
    too_deep: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seg {
    start: usize,
    end: usize,
    width: usize,
}

/// One single-byte item of a pattern, parsed from `p[i..]`.
#[derive(Clone, Copy)]
enum Item {
    Star,
    Any,
    Lit(u8),
    /// A class starting after `[` (at the `^` if negated) at this index.
    Class(usize),
}

fn at(p: &[u8], i: usize) -> u8 {
    p.get(i).copied().unwrap_or(0)
}

/// Walk a class as Redis does, from just after its `[`: whether `c` is in it (when
/// given), and the index just past it.
fn class(p: &[u8], mut i: usize, c: Option<u8>, nocase: bool) -> (bool, usize) {
    let not = at(p, i) == b'^';
    if not {
        i += 1;
    }
    let mut hit = false;
    loop {
        let rem = p.len().saturating_sub(i);
        if at(p, i) == b'\\' && rem >= 2 {
            i += 1;
            hit |= c == Some(p[i]);
        } else if at(p, i) == b']' {
            break;
        } else if rem == 0 {
            // Unterminated: the class ends with the pattern.
            i -= 1;
            break;
        } else if rem >= 3 && p[i + 1] == b'-' {
            let (mut lo, mut hi) = (p[i], p[i + 2]);
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            if let Some(mut c) = c {
                if nocase {
                    (lo, hi, c) = (lower(lo), lower(hi), lower(c));
                }
                hit |= c >= lo && c <= hi;
            }
            i += 2;
        } else if let Some(c) = c {
            hit |= eq(p[i], c, nocase);
        }
        i += 1;
    }
    (hit != not, i + 1)
}

fn lower(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    a == b || (nocase && lower(a) == lower(b))
}

/// The item at `p[i..]` and the index after it.
fn item(p: &[u8], i: usize) -> (Item, usize) {
    match p[i] {
        b'*' => {
            let mut j = i + 1;
            while j < p.len() && p[j] == b'*' {
                j += 1;
            }
            (Item::Star, j)
        }
        b'?' => (Item::Any, i + 1),
        b'[' => (Item::Class(i + 1), class(p, i + 1, None, false).1),
        b'\\' if p.len() - i >= 2 => (Item::Lit(p[i + 1]), i + 2),
        c => (Item::Lit(c), i + 1),
    }
}

impl Glob {
    pub fn new(pat: &[u8], nocase: bool) -> Glob {
        let mut segs = Vec::new();
        let mut cur = Seg {
            start: 0,
            end: 0,
            width: 0,
        };
        let (mut trail, mut stars) = (false, 0usize);
        let mut i = 0;
        while i < pat.len() {
            let (it, next) = item(pat, i);
            match it {
                Item::Star => {
                    stars += 1;
                    trail = next == pat.len();
                    segs.push(cur);
                    cur = Seg {
                        start: next,
                        end: next,
                        width: 0,
                    };
                }
                _ => {
                    cur.end = next;
                    cur.width += 1;
                }
            }
            i = next;
        }
        segs.push(cur);
        let nested = stars - usize::from(trail);
        Glob {
            pat: pat.into(),
            nocase,
            segs: segs.into(),
            too_deep: nested > MAX_NESTING,
        }
    }

    /// The pattern as given.
    pub fn pattern(&self) -> &[u8] {
        &self.pat
    }

    /// Whether the whole of `s` matches.
    pub fn matches(&self, s: &[u8]) -> bool {
        if s.is_empty() {
            return self.pat.is_empty();
        }
        if self.too_deep {
            return false;
        }
        let first = self.segs[0];
        let last = self.segs[self.segs.len() - 1];
        if self.segs.len() == 1 {
            return first.width == s.len() && self.seg_at(first, s, 0);
        }
        // Before the first star, and after the last one, anchored.
        if first.width + last.width > s.len() || !self.seg_at(first, s, 0) {
            return false;
        }
        let tail = s.len() - last.width;
        if !self.seg_at(last, s, tail) {
            return false;
        }
        let mut pos = first.width;
        for &seg in &self.segs[1..self.segs.len() - 1] {
            match self.find(seg, &s[..tail], pos) {
                Some(at) => pos = at + seg.width,
                None => return false,
            }
        }
        true
    }

    /// Whether `seg` matches `s` at `at` (the caller checked it fits).
    fn seg_at(&self, seg: Seg, s: &[u8], at: usize) -> bool {
        let (p, nocase) = (&*self.pat, self.nocase);
        let mut i = seg.start;
        let mut k = at;
        while i < seg.end {
            let c = s[k];
            let (ok, next) = match item(p, i) {
                (Item::Any, n) => (true, n),
                (Item::Lit(l), n) => (eq(l, c, nocase), n),
                (Item::Class(from), _) => class(p, from, Some(c), nocase),
                (Item::Star, n) => (true, n),
            };
            if !ok {
                return false;
            }
            i = next;
            k += 1;
        }
        true
    }

    /// The leftmost place at or after `from` where `seg` matches within `s`.
    fn find(&self, seg: Seg, s: &[u8], from: usize) -> Option<usize> {
        if seg.width == 0 {
            return Some(from);
        }
        let last_start = s.len().checked_sub(seg.width)?;
        let first = match item(&self.pat, seg.start).0 {
            Item::Lit(l) if !self.nocase || !l.is_ascii_alphabetic() => Some(l),
            _ => None,
        };
        let mut at = from;
        while at <= last_start {
            if let Some(l) = first {
                at += memchr::memchr(l, &s[at..=last_start])?;
            }
            if self.seg_at(seg, s, at) {
                return Some(at);
            }
            at += 1;
        }
        None
    }
}

/// Match once (compile and match); for many strings compile a [`Glob`] once.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    Glob::new(pattern, nocase).matches(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis's `stringmatchlen`, transcribed as a plain backtracking reference (with its
    /// nesting limit and the early exit), to compare against on small inputs.
    fn reference(p: &[u8], s: &[u8], nocase: bool, skip: &mut bool, nesting: usize) -> bool {
        if nesting > MAX_NESTING {
            return false;
        }
        let (mut p, mut s) = (p, s);
        while !p.is_empty() && !s.is_empty() {
            match p[0] {
                b'*' => {
                    while p.len() > 1 && p[1] == b'*' {
                        p = &p[1..];
                    }
                    if p.len() == 1 {
                        return true;
                    }
                    while !s.is_empty() {
                        if reference(&p[1..], s, nocase, skip, nesting + 1) {
                            return true;
                        }
                        if *skip {
                            return false;
                        }
                        s = &s[1..];
                    }
                    *skip = true;
                    return false;
                }
                b'?' => {
                    s = &s[1..];
                    p = &p[1..];
                }
                b'[' => {
                    let (ok, next) = class(p, 1, Some(s[0]), nocase);
                    if !ok {
                        return false;
                    }
                    s = &s[1..];
                    p = &p[next.min(p.len())..];
                }
                _ => {
                    let (lit, n) = if p[0] == b'\\' && p.len() >= 2 {
                        (p[1], 2)
                    } else {
                        (p[0], 1)
                    };
                    if !eq(lit, s[0], nocase) {
                        return false;
                    }
                    s = &s[1..];
                    p = &p[n..];
                }
            }
            if s.is_empty() {
                while p.first() == Some(&b'*') {
                    p = &p[1..];
                }
                break;
            }
        }
        p.is_empty() && s.is_empty()
    }

    fn redis(p: &[u8], s: &[u8], nocase: bool) -> bool {
        reference(p, s, nocase, &mut false, 0)
    }

    #[test]
    fn basics() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"sess:*", b"sess:1", false));
        assert!(!glob_match(b"sess:*", b"user:1", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"h\\*", b"h*", false));
        assert!(!glob_match(b"h\\*", b"hx", false));
        assert!(glob_match(b"MAX*", b"maxmemory", true));
        assert!(!glob_match(b"a", b"ab", false));
        assert!(glob_match(b"*a*b*c*", b"xxaxxbxxc", false));
        assert!(!glob_match(b"*a*b*c*", b"xxaxxcxxb", false));
        assert!(glob_match(b"a*b", b"ab", false));
        assert!(glob_match(b"a*b", b"abab", false));
    }

    /// The quirks, as `redis-server` 7.0 answers them through KEYS.
    #[test]
    fn redis_quirks() {
        assert!(!glob_match(b"*", b"", false));
        assert!(glob_match(b"", b"", false));
        assert!(glob_match(b"[a-]x", b"a-]x", false) == redis(b"[a-]x", b"a-]x", false));
        assert!(!glob_match(b"a[", b"ab", false));
        assert!(glob_match(b"a[^", b"ab", false));
        assert!(glob_match(b"a\\", b"a\\", false));
        assert!(!glob_match(b"[\\A]", b"a", true));
        assert!(glob_match(b"[A]", b"a", true));
        assert!(glob_match(b"[A-C]", b"b", true));
    }

    /// Random small patterns over a small alphabet agree with the reference.
    #[test]
    fn agrees_with_redis_on_random_inputs() {
        let alphabet = b"ab*?[]^-\\A";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200_000 {
            let plen = (next() % 9) as usize;
            let slen = (next() % 7) as usize;
            let p: Vec<u8> = (0..plen)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let s: Vec<u8> = (0..slen)
                .map(|_| b"abA-]^*"[(next() % 7) as usize])
                .collect();
            for nocase in [false, true] {
                assert_eq!(
                    glob_match(&p, &s, nocase),
                    redis(&p, &s, nocase),
                    "pattern {:?} string {:?} nocase {nocase}",
                    String::from_utf8_lossy(&p),
                    String::from_utf8_lossy(&s)
                );
            }
        }
    }

    /// The reproductions answer at once (each used to take minutes or more).
    #[test]
    fn hostile_patterns_are_cheap() {
        let key = vec![b'a'; 40];
        let stars = "a*".repeat(20) + "b";
        assert!(!glob_match(stars.as_bytes(), &key, false));
        // Redis's own regression: 50,000 `*?` against a 50,000-byte key is no match (the
        // nesting limit), and must not take long.
        let key = vec![b'a'; 50_000];
        assert!(!glob_match("*?".repeat(50_000).as_bytes(), &key, false));
        // Under the limit, the same shape matches, in one pass.
        assert!(glob_match("*?".repeat(1000).as_bytes(), &key, false));
        assert!(!glob_match(
            ("*?".repeat(999) + "*b").as_bytes(),
            &key,
            false
        ));
    }
}
