//! A small deterministic mutator for the CI smoke: libFuzzer's moves in miniature (flip, insert,
//! erase, duplicate, splice two inputs, insert a keyword, truncate), seeded, so a failure in CI
//! is reproduced by the same seed.

/// A seeded mutator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Mutator {
    state: u64,
}

impl Mutator {
    /// A mutator from a seed (0 is replaced by a fixed non-zero seed).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Mutator {
            state: if seed == 0 {
                0x9e37_79b9_7f4a_7c15
            } else {
                seed
            },
        }
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % (n as u64)).unwrap_or(0)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64().to_le_bytes()[0]).collect()
    }

    /// A mutation of `input` (1 to 4 moves), splicing from `other` and inserting words of
    /// `dictionary`, at most `max_len` bytes long.
    pub fn mutate(
        &mut self,
        input: &[u8],
        other: &[u8],
        dictionary: &[&str],
        max_len: usize,
    ) -> Vec<u8> {
        let mut v = input.to_vec();
        let moves = 1 + self.below(4);
        for _ in 0..moves {
            self.one(&mut v, other, dictionary);
        }
        v.truncate(max_len);
        v
    }

    fn range(&mut self, len: usize) -> (usize, usize) {
        let a = self.below(len + 1);
        let b = a + self.below(len - a + 1).min(64);
        (a, b)
    }

    fn one(&mut self, v: &mut Vec<u8>, other: &[u8], dictionary: &[&str]) {
        let len = v.len();
        match self.below(9) {
            0 if len > 0 => {
                let i = self.below(len);
                if let Some(b) = v.get_mut(i) {
                    *b ^= 1 << self.below(8);
                }
            }
            1 => {
                let i = self.below(len + 1);
                let b = self.next_u64().to_le_bytes()[0];
                v.insert(i, b);
            }
            2 if len > 0 => {
                let (a, b) = self.range(len);
                v.drain(a..b);
            }
            3 if len > 0 => {
                let (a, b) = self.range(len);
                let chunk: Vec<u8> = v.get(a..b).unwrap_or_default().to_vec();
                let at = self.below(len + 1);
                v.splice(at..at, chunk);
            }
            4 if !other.is_empty() => {
                let (a, b) = self.range(other.len());
                let chunk = other.get(a..b).unwrap_or_default();
                let at = self.below(len + 1);
                v.splice(at..at, chunk.iter().copied());
            }
            5 | 6 if !dictionary.is_empty() => {
                let w = dictionary
                    .get(self.below(dictionary.len()))
                    .copied()
                    .unwrap_or("");
                let at = self.below(len + 1);
                v.splice(at..at, w.bytes());
            }
            7 if len > 0 => {
                let at = self.below(len);
                v.truncate(at);
            }
            8 if len > 0 => {
                // Replace a byte by an "interesting" one (quotes, brackets, digits, a NUL, UTF-8).
                const SPECIAL: &[u8] = b"\"'\\()[]{}<>,.:;=|#\n\r\t 0019-+e\0\xff\xc3";
                let i = self.below(len);
                let b = SPECIAL
                    .get(self.below(SPECIAL.len()))
                    .copied()
                    .unwrap_or(b' ');
                if let Some(x) = v.get_mut(i) {
                    *x = b;
                }
            }
            _ => {
                let n = 1 + self.below(8);
                let at = self.below(len + 1);
                let bytes = self.bytes(n);
                v.splice(at..at, bytes);
            }
        }
    }
}
