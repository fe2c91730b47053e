//! The B+tree over the cachetable: lookup, range scan, insert with splits, delete.
//!
//! Leaves hold sorted key/value entries; an internal node's child `i + 1` holds keys at or
//! above `keys[i]`. Deletes do not merge nodes: an emptied leaf stays until the key space
//! refills it, which keeps every change local to one leaf plus the splits above it.
//!
//! A node splits when its encoding exceeds the page size, at the byte midpoint of its entries.
//! Every node at rest then stays within a page plus one entry `E` as long as `E` is at most
//! half a page: a node that splits held at most that plus the entry just added, so each half
//! holds at most half of `page + 2E` plus the entry at the cut, `page/2 + 2E <= page + E`. The
//! in-place strategies size their page slots from this bound.

use std::ops::Bound;

use crate::cachetable::Cachetable;
use crate::error::Result;
use crate::format::page::Node;
use crate::types::PageId;
use crate::vfs::VfsFile;

/// Index of the child of an internal node that covers `key`.
fn child_index(keys: &[Vec<u8>], key: &[u8]) -> usize {
    keys.partition_point(|separator| separator.as_slice() <= key)
}

impl Cachetable {
    /// Loads the root-to-leaf path for `key`; returns (internal page, child index) pairs and
    /// the leaf.
    async fn descend<F: VfsFile>(
        &mut self,
        file: &F,
        key: &[u8],
    ) -> Result<(Vec<(PageId, usize)>, PageId)> {
        let mut path = Vec::new();
        let mut id = self.root;
        // The tree's height bounds this loop; a cycle would mean corruption, which the page
        // id checks in decode prevent from forming.
        loop {
            self.load(file, id).await?;
            match self.node(id) {
                Node::Leaf { .. } => return Ok((path, id)),
                Node::Internal { keys, children } => {
                    let index = child_index(keys, key);
                    path.push((id, index));
                    id = children[index];
                }
            }
        }
    }

    /// The number of pages on the path to `key`'s leaf; the path must be loaded.
    pub fn height(&self, key: &[u8]) -> usize {
        let mut id = self.root;
        let mut height = 1;
        // Bounded by the tree's height, as in `descend`.
        while let Node::Internal { keys, children } = self.node(id) {
            id = children[child_index(keys, key)];
            height += 1;
        }
        height
    }

    /// Loads every page `key`'s operation will touch, so that applying it needs no I/O.
    pub async fn prefetch<F: VfsFile>(&mut self, file: &F, key: &[u8]) -> Result<()> {
        self.descend(file, key).await.map(|_| ())
    }

    pub async fn get<F: VfsFile>(&mut self, file: &F, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (_, leaf) = self.descend(file, key).await?;
        let Node::Leaf { entries } = self.node(leaf) else {
            unreachable!("descend ends at a leaf")
        };
        Ok(entries
            .binary_search_by(|(candidate, _)| candidate.as_slice().cmp(key))
            .ok()
            .map(|index| entries[index].1.clone()))
    }

    /// Entries with keys in `[start, end)`, at most `limit` of them, in key order.
    pub async fn scan<F: VfsFile>(
        &mut self,
        file: &F,
        start: &[u8],
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        // Depth-first over the subtrees that overlap the range; the stack holds at most
        // height * fanout pages.
        let mut stack = vec![self.root];
        while let Some(id) = stack.pop() {
            if out.len() >= limit {
                break;
            }
            self.load(file, id).await?;
            match self.node(id) {
                Node::Leaf { entries } => {
                    for (key, value) in entries {
                        if key.as_slice() < start {
                            continue;
                        }
                        let before_end = match end {
                            Bound::Excluded(end) => key.as_slice() < end,
                            Bound::Included(end) => key.as_slice() <= end,
                            Bound::Unbounded => true,
                        };
                        if !before_end || out.len() >= limit {
                            break;
                        }
                        out.push((key.clone(), value.clone()));
                    }
                }
                Node::Internal { keys, children } => {
                    let first = child_index(keys, start);
                    let last = match end {
                        Bound::Excluded(end) | Bound::Included(end) => child_index(keys, end),
                        Bound::Unbounded => children.len() - 1,
                    };
                    // Pushed in reverse so the leftmost child is visited first.
                    stack.extend(children[first..=last.max(first)].iter().rev());
                }
            }
        }
        Ok(out)
    }

    /// Applies a put or delete. The path must have been prefetched: this does no I/O.
    pub fn apply_loaded(&mut self, key: &[u8], value: Option<&[u8]>) {
        let mut path = Vec::new();
        let mut id = self.root;
        loop {
            match self.node(id) {
                Node::Leaf { .. } => break,
                Node::Internal { keys, children } => {
                    let index = child_index(keys, key);
                    path.push((id, index));
                    id = children[index];
                }
            }
        }
        let leaf = id;
        let found = match self.node(leaf) {
            Node::Leaf { entries } => {
                entries.binary_search_by(|(candidate, _)| candidate.as_slice().cmp(key))
            }
            Node::Internal { .. } => unreachable!("the walk ends at a leaf"),
        };
        match (value, found) {
            (None, Err(_)) => return,
            (None, Ok(index)) => {
                let Node::Leaf { entries } = self.node_mut(leaf) else {
                    unreachable!()
                };
                entries.remove(index);
                self.note_delta(leaf, key, None);
                return;
            }
            (Some(value), found) => {
                let Node::Leaf { entries } = self.node_mut(leaf) else {
                    unreachable!()
                };
                match found {
                    Ok(index) => entries[index].1 = value.to_vec(),
                    Err(index) => entries.insert(index, (key.to_vec(), value.to_vec())),
                }
                self.note_delta(leaf, key, Some(value));
            }
        }
        self.split_upwards(path, leaf);
    }

    /// Splits `id` if it is over the page size, then its parents as needed, growing a new
    /// root when the old one splits.
    fn split_upwards(&mut self, mut path: Vec<(PageId, usize)>, mut id: PageId) {
        // Each pass moves one level up the path, so it runs at most height + 1 times.
        loop {
            if self.node(id).encoded_size() <= self.page_size_bytes {
                return;
            }
            let Some((separator, right)) = self.split(id) else {
                return;
            };
            self.note_structural(id);
            let right_id = self.insert_new(right);
            match path.pop() {
                Some((parent, index)) => {
                    let Node::Internal { keys, children } = self.node_mut(parent) else {
                        unreachable!("a path holds internal nodes")
                    };
                    keys.insert(index, separator);
                    children.insert(index + 1, right_id);
                    self.note_structural(parent);
                    id = parent;
                }
                None if self.root_fixed => {
                    // The root keeps its page: its left half moves to a new page instead.
                    let root = Node::Internal {
                        keys: vec![separator],
                        children: Vec::new(),
                    };
                    let left = std::mem::replace(self.node_mut(id), root);
                    let left_id = self.insert_new(left);
                    let Node::Internal { children, .. } = self.node_mut(id) else {
                        unreachable!("just made internal")
                    };
                    children.extend([left_id, right_id]);
                    return;
                }
                None => {
                    let root = Node::Internal {
                        keys: vec![separator],
                        children: vec![id, right_id],
                    };
                    self.root = self.insert_new(root);
                    return;
                }
            }
        }
    }

    /// Moves the upper half (by bytes) of `id` into a new node; returns the separator and the
    /// new node, or None if the node is too small to split.
    fn split(&mut self, id: PageId) -> Option<(Vec<u8>, Node)> {
        match self.node(id) {
            Node::Leaf { entries } if entries.len() < 2 => return None,
            Node::Internal { keys, .. } if keys.len() < 3 => return None,
            _ => {}
        }
        match self.node_mut(id) {
            Node::Leaf { entries } => {
                let sizes: Vec<usize> = entries
                    .iter()
                    .map(|(key, value)| 8 + key.len() + value.len())
                    .collect();
                let cut = byte_midpoint(&sizes).clamp(1, entries.len() - 1);
                let upper = entries.split_off(cut);
                Some((upper[0].0.clone(), Node::Leaf { entries: upper }))
            }
            Node::Internal { keys, children } => {
                let sizes: Vec<usize> = keys.iter().map(|key| 12 + key.len()).collect();
                let middle = byte_midpoint(&sizes).clamp(1, keys.len() - 2);
                let upper_keys = keys.split_off(middle + 1);
                let separator = keys.pop().expect("middle < len");
                let upper_children = children.split_off(middle + 1);
                Some((
                    separator,
                    Node::Internal {
                        keys: upper_keys,
                        children: upper_children,
                    },
                ))
            }
        }
    }
}

/// How many of `sizes`, from the front, it takes for their total to reach half of the sum:
/// the left part of a split, at most half the bytes plus the one entry that crosses the middle.
fn byte_midpoint(sizes: &[usize]) -> usize {
    let total: usize = sizes.iter().sum();
    let mut running = 0;
    for (index, size) in sizes.iter().enumerate() {
        running += size;
        if running * 2 >= total {
            return index + 1;
        }
    }
    sizes.len()
}

#[cfg(test)]
mod tests {
    use super::{byte_midpoint, child_index};

    #[test]
    fn splits_cut_at_the_byte_midpoint() {
        // Proves a split balances bytes, not entry counts: one big entry stands alone.
        assert_eq!(byte_midpoint(&[10, 10, 10, 10]), 2);
        assert_eq!(byte_midpoint(&[100, 1, 1, 1]), 1);
        assert_eq!(byte_midpoint(&[1, 1, 1, 100]), 4);
    }

    #[test]
    fn child_index_sends_separator_keys_right() {
        // Proves the separator convention: child i + 1 holds keys >= keys[i].
        let keys = vec![b"m".to_vec(), b"t".to_vec()];
        assert_eq!(child_index(&keys, b"a"), 0);
        assert_eq!(child_index(&keys, b"m"), 1);
        assert_eq!(child_index(&keys, b"s"), 1);
        assert_eq!(child_index(&keys, b"t"), 2);
        assert_eq!(child_index(&keys, b"z"), 2);
    }
}
