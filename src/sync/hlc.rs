//! Hybrid logical clocks: wall milliseconds, a counter and the node (the store)
//! that issued it. Ordered by all three, so two clocks are never equal unless
//! one node issued both — and a node never issues one twice: each new clock is
//! above every clock the node has issued or seen, however its wall clock moves.

use std::fmt;

/// A hybrid logical clock. Text form: `<ms>.<counter>.<node as 16 hex digits>`,
/// for example `1764633600000.0.9f3a61c20b7d44e5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    /// Unix milliseconds (the wall clock of the node that issued it, or of a
    /// clock it had seen that was ahead of its own).
    pub ms: u64,
    /// Orders clocks issued within one millisecond.
    pub counter: u32,
    /// The issuing store's node id.
    pub node: u64,
}

impl Hlc {
    /// The lowest clock: below every clock any node issues.
    pub const ZERO: Hlc = Hlc {
        ms: 0,
        counter: 0,
        node: 0,
    };

    /// The next clock of `node`: above `last` (the highest clock the node has
    /// issued or seen) and at `wall_ms` when the wall clock is ahead of it.
    pub fn tick(last: Hlc, wall_ms: u64, node: u64) -> Hlc {
        if wall_ms > last.ms {
            Hlc {
                ms: wall_ms,
                counter: 0,
                node,
            }
        } else if last.counter < u32::MAX {
            Hlc {
                ms: last.ms,
                counter: last.counter + 1,
                node,
            }
        } else {
            Hlc {
                ms: last.ms + 1,
                counter: 0,
                node,
            }
        }
    }

    /// Parses the text form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Hlc> {
        let mut parts = s.split('.');
        let (ms, counter, node) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let digits = |p: &str, max: usize| {
            !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(ms, 16) || !digits(counter, 10) || node.len() != 16 {
            return None;
        }
        if !node.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        // No leading zeros: one clock, one spelling.
        if (ms.len() > 1 && ms.starts_with('0')) || (counter.len() > 1 && counter.starts_with('0'))
        {
            return None;
        }
        Some(Hlc {
            ms: ms.parse().ok()?,
            counter: counter.parse().ok()?,
            node: u64::from_str_radix(node, 16).ok()?,
        })
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{:016x}", self.ms, self.counter, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_rise_whatever_the_wall_clock_does() {
        let node = 7;
        let mut last = Hlc::ZERO;
        for wall in [100, 100, 99, 50, 101, 101, 0] {
            let next = Hlc::tick(last, wall, node);
            assert!(next > last, "{next} after {last} at wall {wall}");
            last = next;
        }
        assert_eq!(
            last,
            Hlc {
                ms: 101,
                counter: 2,
                node
            }
        );
        let full = Hlc {
            ms: 5,
            counter: u32::MAX,
            node,
        };
        assert_eq!(
            Hlc::tick(full, 0, node),
            Hlc {
                ms: 6,
                counter: 0,
                node
            }
        );
    }

    #[test]
    fn the_text_form_round_trips_and_has_one_spelling() {
        let c = Hlc {
            ms: 1_764_633_600_000,
            counter: 3,
            node: 0x9f3a_61c2_0b7d_44e5,
        };
        assert_eq!(c.to_string(), "1764633600000.3.9f3a61c20b7d44e5");
        assert_eq!(Hlc::parse(&c.to_string()), Some(c));
        for bad in [
            "",
            "1.2",
            "1.2.3",
            "01.0.0000000000000000",
            "1.00.0000000000000000",
            "1.0.000000000000000G",
            "1.0.00000000000000000",
            "1.0.0000000000000000.1",
            "-1.0.0000000000000000",
            "1.0.ABCDEF0000000000",
            "99999999999999999.0.0000000000000000",
        ] {
            assert_eq!(Hlc::parse(bad), None, "{bad:?}");
        }
    }
}
