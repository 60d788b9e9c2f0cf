//! [`Candidate`]: the planner's view of one snapshot.

use std::cmp::Ordering;

use jiff::Timestamp;

/// One snapshot of a share as the planner sees it. The caller builds it from the snapshot's zfs
/// properties (and holds); the planner never looks anything up itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The snapshot's name (the part after `@`). Names are expected to be unique within one plan,
    /// as they are within one dataset.
    pub name: String,
    /// Carries Backstop's `managed` mark locally. Only managed snapshots are ever destroyed.
    pub managed: bool,
    /// When the backup it captures completed (Backstop's `backup-time` mark).
    pub backup_time: Option<Timestamp>,
    /// The snapshot's zfs `creation` time; stands in for a missing `backup_time`.
    pub created: Timestamp,
    /// Marked as verified good (a restore from it is known to work).
    pub verified_good: bool,
    /// Carries the keep mark: a person asked to keep it.
    pub keep: bool,
    /// The number of zfs holds on it (`userrefs`); a held snapshot cannot be destroyed anyway.
    pub holds: u64,
    /// Its zfs `used` bytes: what destroying it alone would free, at least.
    pub used: u64,
}

impl Candidate {
    /// The time the rules go by: the backup time, or the creation time when there is none.
    pub(super) fn time(&self) -> Timestamp {
        self.backup_time.unwrap_or(self.created)
    }

    /// The planner's one order: oldest first by [`time`](Self::time), then by name (so among
    /// equal times the larger name counts as newer), then by every other field, so that the
    /// order — and with it the plan — never depends on the order of the input.
    pub(super) fn canonical_cmp(&self, other: &Candidate) -> Ordering {
        let key = |c: &Candidate| {
            (
                c.time(),
                c.managed,
                c.backup_time,
                c.created,
                c.verified_good,
                c.keep,
                c.holds,
                c.used,
            )
        };
        self.time()
            .cmp(&other.time())
            .then_with(|| self.name.cmp(&other.name))
            .then_with(|| key(self).cmp(&key(other)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, backup: Option<i64>, created: i64) -> Candidate {
        Candidate {
            name: name.to_string(),
            managed: true,
            backup_time: backup.map(|s| Timestamp::from_second(s).unwrap()),
            created: Timestamp::from_second(created).unwrap(),
            verified_good: false,
            keep: false,
            holds: 0,
            used: 0,
        }
    }

    #[test]
    fn time_is_backup_time_else_created() {
        assert_eq!(cand("a", Some(5), 9).time().as_second(), 5);
        assert_eq!(cand("a", None, 9).time().as_second(), 9);
    }

    #[test]
    fn canonical_order_is_time_then_name_then_the_rest() {
        let older = cand("z", Some(1), 100);
        let newer = cand("a", Some(2), 0);
        assert_eq!(older.canonical_cmp(&newer), Ordering::Less);
        let small = cand("a", Some(1), 0);
        let large = cand("b", Some(1), 0);
        assert_eq!(small.canonical_cmp(&large), Ordering::Less);
        let mut same = small.clone();
        assert_eq!(small.canonical_cmp(&same), Ordering::Equal);
        same.used = 1;
        assert_eq!(small.canonical_cmp(&same), Ordering::Less);
    }
}
