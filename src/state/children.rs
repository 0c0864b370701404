//! The children of each parent by status, in dispatch order: what pages of children (newest
//! first, filtered by status) read without scanning a million of them.
//!
//! Each child sits in exactly one set, its status's, keyed by its create index (unique and
//! increasing: a later dispatch has a higher one). `insert`, `restatus` and `remove` keep
//! the sets current; they are called wherever a dispatch is added, changes status or goes.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use crate::model::{Dispatch, DispatchStatus};

/// One parent's children: create index -> child ID, one map per status.
#[derive(Debug, Default)]
pub struct ChildIndex {
    by_status: [BTreeMap<u64, Arc<str>>; 5],
}

fn slot(status: DispatchStatus) -> usize {
    match status {
        DispatchStatus::Pending => 0,
        DispatchStatus::Running => 1,
        DispatchStatus::Complete => 2,
        DispatchStatus::Failed => 3,
        DispatchStatus::Stopped => 4,
    }
}

/// One status's children in the order a page walks them.
type Run<'a> = Box<dyn Iterator<Item = (&'a u64, &'a Arc<str>)> + 'a>;

/// Every parent's `ChildIndex`, by parent ID.
#[derive(Debug, Default)]
pub struct Children(HashMap<String, ChildIndex>);

impl Children {
    pub fn insert(&mut self, d: &Dispatch) {
        self.0.entry(d.parent().to_string()).or_default().by_status[slot(d.status)]
            .insert(d.create_index, d.id.clone());
    }

    /// `d` moved from `old` to its current status.
    pub fn restatus(&mut self, d: &Dispatch, old: DispatchStatus) {
        if old == d.status {
            return;
        }
        if let Some(index) = self.0.get_mut(d.parent()) {
            index.by_status[slot(old)].remove(&d.create_index);
            index.by_status[slot(d.status)].insert(d.create_index, d.id.clone());
        }
    }

    pub fn remove(&mut self, d: &Dispatch) {
        if let Some(index) = self.0.get_mut(d.parent()) {
            index.by_status[slot(d.status)].remove(&d.create_index);
            if index.by_status.iter().all(BTreeMap::is_empty) {
                self.0.remove(d.parent());
            }
        }
    }

    /// Up to `limit` child IDs of `parent` with one of `statuses`, ordered by create index,
    /// starting after `cursor` (exclusive) in the direction `newest_first` says.
    pub fn page(
        &self,
        parent: &str,
        statuses: &[DispatchStatus],
        cursor: Option<u64>,
        newest_first: bool,
        limit: usize,
    ) -> Vec<(u64, Arc<str>)> {
        let Some(index) = self.0.get(parent) else {
            return Vec::new();
        };
        let range = match (cursor, newest_first) {
            (None, _) => (Bound::Unbounded, Bound::Unbounded),
            (Some(c), true) => (Bound::Unbounded, Bound::Excluded(c)),
            (Some(c), false) => (Bound::Excluded(c), Bound::Unbounded),
        };
        // A k-way merge of at most five ordered runs: each step takes the best head.
        let mut runs: Vec<std::iter::Peekable<Run<'_>>> = statuses
            .iter()
            .map(|s| {
                let r = index.by_status[slot(*s)].range(range);
                let it: Run<'_> = if newest_first {
                    Box::new(r.rev())
                } else {
                    Box::new(r)
                };
                it.peekable()
            })
            .collect();
        let mut out = Vec::with_capacity(limit.min(1024));
        while out.len() < limit {
            let mut best: Option<(usize, u64)> = None;
            for (i, run) in runs.iter_mut().enumerate() {
                if let Some((k, _)) = run.peek() {
                    let better = match best {
                        None => true,
                        Some((_, b)) if newest_first => **k > b,
                        Some((_, b)) => **k < b,
                    };
                    if better {
                        best = Some((i, **k));
                    }
                }
            }
            let Some((i, _)) = best else { break };
            if let Some((k, id)) = runs[i].next() {
                out.push((*k, id.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::job::test_job;

    fn child(create_index: u64, status: DispatchStatus) -> Dispatch {
        Dispatch {
            id: format!("j/dispatch-1-{create_index:08x}").into(),
            job: Arc::new(test_job("j")),
            meta: Default::default(),
            priority: 50,
            status,
            idempotency_token: None,
            payload_len: 0,
            eval_id: uuid::Uuid::nil(),
            submit_time: 0,
            create_index,
            modify_index: create_index,
            description: None,
            ended_at: 0,
            runs: Vec::new(),
            dispatched_by: None,
        }
    }

    fn keys(page: Vec<(u64, Arc<str>)>) -> Vec<u64> {
        page.into_iter().map(|(k, _)| k).collect()
    }

    /// Pages run newest first across statuses, a filter keeps one status, cursors go both
    /// ways, and a status change moves the child between sets.
    #[test]
    fn pages_follow_order_filter_and_status() {
        use DispatchStatus::*;
        let mut c = Children::default();
        let mut kids: Vec<Dispatch> = (1..=7)
            .map(|i| child(i, if i % 2 == 0 { Running } else { Pending }))
            .collect();
        for d in &kids {
            c.insert(d);
        }
        let all = [Pending, Running, Complete, Failed, Stopped];
        assert_eq!(keys(c.page("j", &all, None, true, 3)), [7, 6, 5]);
        assert_eq!(keys(c.page("j", &all, Some(5), true, 3)), [4, 3, 2]);
        assert_eq!(keys(c.page("j", &all, Some(2), true, 3)), [1]);
        assert_eq!(keys(c.page("j", &all, Some(4), false, 2)), [5, 6]);
        assert_eq!(keys(c.page("j", &[Running], None, true, 10)), [6, 4, 2]);
        kids[5].status = Complete;
        c.restatus(&kids[5], Running);
        assert_eq!(keys(c.page("j", &[Running], None, true, 10)), [4, 2]);
        assert_eq!(keys(c.page("j", &[Complete], None, true, 10)), [6]);
        c.remove(&kids[5]);
        assert_eq!(keys(c.page("j", &all, None, true, 10)), [7, 5, 4, 3, 2, 1]);
        assert!(c.page("other", &all, None, true, 10).is_empty());
    }
}
