//! [`PoolSpace`] and the free-space floor (`min_free_percent`) arithmetic.

use serde::Serialize;

/// The pool's size and free bytes, as the caller read them (`zpool list -Hp size,free`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PoolSpace {
    pub size: u64,
    pub free: u64,
}

/// The free-space floor while a plan is being made: the projected free bytes grow by the `used`
/// of every snapshot the plan destroys.
///
/// `used` is what destroying a snapshot *alone* frees; destroying several frees at least the sum
/// (blocks shared only among destroyed snapshots are freed too). The projection is therefore a
/// lower bound: a plan may free somewhat more than the floor needs, never less than it projects.
pub(super) struct Floor {
    size: u128,
    percent: u128,
    projected_free: u128,
}

impl Floor {
    /// The floor, when the policy has one and the pool's space is known.
    pub(super) fn new(space: Option<PoolSpace>, min_free_percent: u8) -> Option<Floor> {
        let space = space?;
        (min_free_percent > 0).then(|| Floor {
            size: u128::from(space.size),
            percent: u128::from(min_free_percent.min(100)),
            projected_free: u128::from(space.free),
        })
    }

    /// The percentage reasons name (`min_free_percent`, at most 100).
    pub(super) fn percent(&self) -> u8 {
        self.percent as u8
    }

    /// Whether the projected free space is below the floor: `free * 100 / size < percent`
    /// (exactly, without rounding). A pool of size 0 is never below.
    pub(super) fn is_below(&self) -> bool {
        self.projected_free * 100 < self.percent * self.size
    }

    /// Counts `used` bytes as freed.
    pub(super) fn free(&mut self, used: u64) {
        self.projected_free += u128::from(used);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floor(size: u64, free: u64, percent: u8) -> Option<Floor> {
        Floor::new(Some(PoolSpace { size, free }), percent)
    }

    #[test]
    fn no_floor_without_space_or_percent() {
        assert!(Floor::new(None, 10).is_none());
        assert!(floor(100, 0, 0).is_none());
    }

    #[test]
    fn below_is_exact() {
        assert!(floor(1000, 99, 10).unwrap().is_below());
        assert!(!floor(1000, 100, 10).unwrap().is_below());
        // 9.99% is below 10% even though it is not below in whole percent rounded up.
        assert!(floor(10_000, 999, 10).unwrap().is_below());
        assert!(!floor(0, 0, 10).unwrap().is_below());
        let mut f = floor(u64::MAX, 0, 100).unwrap();
        assert!(f.is_below());
        f.free(u64::MAX);
        assert!(!f.is_below());
    }

    #[test]
    fn percent_above_100_acts_like_100() {
        let f = floor(1000, 1000, 250).unwrap();
        assert_eq!(f.percent(), 100);
        assert!(!f.is_below());
    }

    #[test]
    fn freeing_raises_the_projection() {
        let mut f = floor(1000, 50, 10).unwrap();
        f.free(49);
        assert!(f.is_below());
        f.free(1);
        assert!(!f.is_below());
    }
}
