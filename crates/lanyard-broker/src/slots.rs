//! The upstream concurrency of one host, shared fairly between teams.
//!
//! A host allows [`FairSlots::capacity`] mints in flight at once (`max_concurrent_mints`; GitHub
//! documents 100 concurrent requests as its limit, shared with everything else the App does). A slot is taken
//! before any lock and before the mint, and given back when the mint is stored.
//!
//! Fairness: a team holds at most [`FairSlots::team_share`] slots, so another team always finds
//! one free at once; and when slots run out, each freed slot goes to the waiting team that holds
//! the fewest (the earliest waiter of that team). One team's cold start of hundreds of scopes
//! therefore queues behind itself, never in front of another team's first mint.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

/// Callers waiting for a slot of one host at most; past this, a caller whose team already waits
/// or holds a slot is told to come back (another team's first caller still joins).
pub const MAX_WAITERS: usize = 10_000;

/// How long a caller waits for a slot before it is told to come back (tokio's time).
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// Why no slot was had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSlot {
    /// Waited [`MAX_WAIT`], or [`MAX_WAITERS`] were already waiting.
    Busy,
}

#[derive(Debug)]
pub struct FairSlots {
    capacity: usize,
    team_share: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    in_use: usize,
    /// Slots held per team; only teams holding one are present (at most `capacity` entries).
    held: HashMap<Uuid, usize>,
    queue: VecDeque<Waiter>,
}

#[derive(Debug)]
struct Waiter {
    team: Uuid,
    grant: oneshot::Sender<SlotPermit>,
}

/// One slot, held by one team until dropped.
#[derive(Debug)]
pub struct SlotPermit {
    slots: Arc<FairSlots>,
    team: Uuid,
    /// Cleared when a grant could not be delivered (its accounting is undone by the granter).
    live: bool,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        if self.live {
            self.slots.release(self.team);
        }
    }
}

impl State {
    fn held(&self, team: &Uuid) -> usize {
        self.held.get(team).copied().unwrap_or(0)
    }

    fn take(&mut self, team: Uuid) {
        self.in_use += 1;
        *self.held.entry(team).or_insert(0) += 1;
    }

    fn give(&mut self, team: Uuid) {
        self.in_use = self.in_use.saturating_sub(1);
        if let Some(n) = self.held.get_mut(&team) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(&team);
            }
        }
    }
}

impl FairSlots {
    /// `capacity` mints in flight at once (at least one).
    pub fn new(capacity: usize) -> Arc<Self> {
        let capacity = capacity.max(1);
        Arc::new(Self {
            capacity,
            // An eighth is kept for the other teams (at least one slot, when there are two).
            team_share: if capacity == 1 {
                1
            } else {
                capacity - (capacity / 8).max(1)
            },
            state: Mutex::new(State::default()),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The most slots one team holds at once.
    pub fn team_share(&self) -> usize {
        self.team_share
    }

    /// Slots held now, and callers waiting.
    pub fn load(&self) -> (usize, usize) {
        let state = self.lock();
        (state.in_use, state.queue.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn eligible(&self, state: &State, team: &Uuid) -> bool {
        state.in_use < self.capacity && state.held(team) < self.team_share
    }

    /// A slot for `team`: at once when one is free to it and no other waiter could take it,
    /// otherwise in turn, for at most [`MAX_WAIT`].
    pub async fn acquire(self: &Arc<Self>, team: Uuid) -> Result<SlotPermit, NoSlot> {
        let granted = {
            let mut state = self.lock();
            let waiter_first = state.queue.iter().any(|w| self.eligible(&state, &w.team));
            if self.eligible(&state, &team) && !waiter_first {
                state.take(team);
                None
            } else if state.queue.len() >= MAX_WAITERS
                && (state.held(&team) > 0 || state.queue.iter().any(|w| w.team == team))
            {
                // Full of waiters: a team that has a slot or a waiter already is told to come
                // back; a team with neither still joins, so one team's queue never shuts
                // another out (each team adds at most one past the bound).
                return Err(NoSlot::Busy);
            } else {
                let (grant, granted) = oneshot::channel();
                state.queue.push_back(Waiter { team, grant });
                Some(granted)
            }
        };
        match granted {
            None => Ok(SlotPermit {
                slots: self.clone(),
                team,
                live: true,
            }),
            // A timed-out waiter's sender stays queued until a release finds it closed (or a
            // grant already sent is dropped with the receiver, which gives the slot back).
            Some(granted) => {
                // The receiver is dropped with this statement, so a closed entry is seen as such.
                let outcome = tokio::time::timeout(MAX_WAIT, granted).await;
                match outcome {
                    Ok(Ok(permit)) => Ok(permit),
                    Ok(Err(_)) | Err(_) => {
                        self.forget_closed();
                        Err(NoSlot::Busy)
                    }
                }
            }
        }
    }

    fn release(self: &Arc<Self>, team: Uuid) {
        let mut state = self.lock();
        state.give(team);
        self.dispatch(&mut state);
    }

    /// Hands free slots to waiters: each to the eligible waiter whose team holds fewest, the
    /// earliest of them on a tie.
    fn dispatch(self: &Arc<Self>, state: &mut State) {
        while state.in_use < self.capacity {
            let next = state
                .queue
                .iter()
                .enumerate()
                .filter(|(_, w)| !w.grant.is_closed() && self.eligible(state, &w.team))
                .min_by_key(|(i, w)| (state.held(&w.team), *i))
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let Some(waiter) = state.queue.remove(i) else {
                break;
            };
            state.take(waiter.team);
            let permit = SlotPermit {
                slots: self.clone(),
                team: waiter.team,
                live: true,
            };
            if let Err(mut undelivered) = waiter.grant.send(permit) {
                // Its caller went away meanwhile: undo the grant here (its drop must not take
                // this lock again).
                undelivered.live = false;
                state.give(undelivered.team);
            }
        }
        state.queue.retain(|w| !w.grant.is_closed());
    }

    fn forget_closed(self: &Arc<Self>) {
        let mut state = self.lock();
        state.queue.retain(|w| !w.grant.is_closed());
        self.dispatch(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn hold(slots: &Arc<FairSlots>, team: Uuid, n: usize) -> Vec<SlotPermit> {
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(slots.acquire(team).await.unwrap());
        }
        held
    }

    #[tokio::test]
    async fn one_team_keeps_a_share_free_for_the_others() {
        let slots = FairSlots::new(8);
        assert_eq!(slots.team_share(), 7);
        let (greedy, other) = (Uuid::new_v4(), Uuid::new_v4());
        let _held = hold(&slots, greedy, 7).await;
        // The greedy team's eighth waits; another team's first mint does not.
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(greedy).await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert_eq!(slots.load(), (7, 1));
        let other_permit = slots.acquire(other).await.unwrap();
        assert_eq!(slots.load(), (8, 1));
        drop(other_permit);
        assert!(!waiting.is_finished());
        waiting.abort();
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_waiting_team_that_holds_fewest() {
        let slots = FairSlots::new(4);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut held_a = hold(&slots, a, 3).await;
        let _held_b = hold(&slots, b, 1).await;
        // Full. A waits first, then B: a slot freed by A goes to B (it holds 1 to A's 2).
        let (tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        for team in [a, b] {
            let (slots, tx) = (slots.clone(), tx.clone());
            tokio::spawn(async move {
                let permit = slots.acquire(team).await.unwrap();
                tx.send(team).unwrap();
                // Held until the test ends.
                std::future::pending::<()>().await;
                drop(permit);
            });
            tokio::task::yield_now().await;
        }
        assert_eq!(slots.load(), (4, 2));
        drop(held_a.pop());
        assert_eq!(order.recv().await, Some(b));
        drop(held_a.pop());
        assert_eq!(order.recv().await, Some(a));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gives_up_after_the_bound_and_leaves_nothing_behind() {
        let slots = FairSlots::new(1);
        let team = Uuid::new_v4();
        let held = slots.acquire(team).await.unwrap();
        assert_eq!(slots.acquire(team).await.unwrap_err(), NoSlot::Busy);
        assert_eq!(slots.load(), (1, 0));
        drop(held);
        assert_eq!(slots.load(), (0, 0));
        drop(slots.acquire(team).await.unwrap());
    }

    #[tokio::test]
    async fn a_cancelled_waiter_does_not_keep_its_grant() {
        let slots = FairSlots::new(1);
        let team = Uuid::new_v4();
        let held = slots.acquire(team).await.unwrap();
        let cancelled = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(team).await.map(drop) }
        });
        tokio::task::yield_now().await;
        cancelled.abort();
        let _ = cancelled.await;
        drop(held);
        assert_eq!(slots.load(), (0, 0));
        drop(slots.acquire(Uuid::new_v4()).await.unwrap());
    }

    #[tokio::test]
    async fn waiters_are_bounded() {
        let slots = FairSlots::new(1);
        let team = Uuid::new_v4();
        let _held = slots.acquire(team).await.unwrap();
        let mut waiting = Vec::new();
        for _ in 0..MAX_WAITERS {
            let slots = slots.clone();
            waiting.push(tokio::spawn(
                async move { slots.acquire(team).await.map(drop) },
            ));
        }
        while slots.load().1 < MAX_WAITERS {
            tokio::task::yield_now().await;
        }
        assert_eq!(slots.acquire(team).await.unwrap_err(), NoSlot::Busy);
        // Another team's first caller still queues behind the bound, and is served in turn.
        let other = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(Uuid::new_v4()).await.map(drop) }
        });
        while slots.load().1 < MAX_WAITERS + 1 {
            tokio::task::yield_now().await;
        }
        other.abort();
        for w in waiting {
            w.abort();
        }
    }
}
