//! Forgetting a team's cached sessions without scanning the cache: they share one mark, and
//! forgetting the team sets it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Shared by the cached sessions of one team: forgetting the team sets it, and each of them is
/// then read again. A team is forgotten without scanning the cache, and checking costs one load.
#[derive(Debug, Default)]
pub struct TeamMark {
    forgotten: AtomicBool,
}

impl TeamMark {
    pub fn forgotten(&self) -> bool {
        self.forgotten.load(Ordering::SeqCst)
    }
}

/// The marks of the teams with sessions in memory. Weak: a mark lives as long as a cached
/// session holds it. Dead entries are swept whenever the map has doubled since the last sweep,
/// so it holds at most twice the live marks (at most one per cached session), or [`MIN_SWEEP`].
#[derive(Debug)]
pub struct TeamMarks {
    inner: Mutex<MarksInner>,
}

#[derive(Debug)]
struct MarksInner {
    marks: HashMap<uuid::Uuid, Weak<TeamMark>>,
    sweep_above: usize,
}

/// The map is not swept below this size.
pub const MIN_SWEEP: usize = 1024;

impl Default for TeamMarks {
    fn default() -> Self {
        Self {
            inner: Mutex::new(MarksInner {
                marks: HashMap::new(),
                sweep_above: MIN_SWEEP,
            }),
        }
    }
}

impl TeamMarks {
    /// The team's current mark, made if it has none.
    pub fn mark(&self, team: uuid::Uuid) -> Arc<TeamMark> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mark) = inner.marks.get(&team).and_then(Weak::upgrade) {
            return mark;
        }
        let mark = Arc::new(TeamMark::default());
        inner.marks.insert(team, Arc::downgrade(&mark));
        if inner.marks.len() > inner.sweep_above {
            inner.marks.retain(|_, m| m.strong_count() > 0);
            inner.sweep_above = (inner.marks.len() * 2).max(MIN_SWEEP);
        }
        mark
    }

    /// Sets the team's mark; its next read makes a new one.
    pub fn forget(&self, team: uuid::Uuid) {
        let removed = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .marks
            .remove(&team);
        if let Some(mark) = removed.and_then(|m| m.upgrade()) {
            mark.forgotten.store(true, Ordering::SeqCst);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .marks
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forgotten_team_sets_the_mark_its_sessions_share_and_the_next_read_gets_a_new_one() {
        let marks = TeamMarks::default();
        let team = uuid::Uuid::new_v4();
        let (first, second) = (marks.mark(team), marks.mark(team));
        assert!(Arc::ptr_eq(&first, &second));
        let other = marks.mark(uuid::Uuid::new_v4());
        marks.forget(team);
        assert!(first.forgotten() && second.forgotten());
        assert!(!other.forgotten());
        assert!(!marks.mark(team).forgotten());
    }

    /// 100,000 teams whose sessions came and went: the map keeps about twice the live marks.
    #[test]
    fn marks_of_teams_no_session_holds_are_swept() {
        let marks = TeamMarks::default();
        let live: Vec<_> = (0..100).map(|_| marks.mark(uuid::Uuid::new_v4())).collect();
        for _ in 0..100_000 {
            drop(marks.mark(uuid::Uuid::new_v4()));
            assert!(marks.len() <= MIN_SWEEP.max(2 * live.len()) + 1);
        }
        assert!(live.iter().all(|m| !m.forgotten()));
    }
}
