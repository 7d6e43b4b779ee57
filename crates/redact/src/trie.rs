//! A byte trie over the credentials of one set: walking it from a position in the text
//! tells, byte by byte, whether some credential can still match, without trying each
//! credential in turn (a connector may hold thousands sharing a vendor prefix).

use zeroize::Zeroize;

#[derive(Default)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
}

#[derive(Default)]
struct Node {
    /// Sorted by byte.
    next: Vec<(u8, u32)>,
    /// The entries that end here.
    ends: Vec<u32>,
}

pub(crate) const ROOT: u32 = 0;

impl Trie {
    pub(crate) fn new() -> Self {
        Self {
            nodes: vec![Node::default()],
        }
    }

    pub(crate) fn insert(&mut self, key: impl IntoIterator<Item = u8>, id: u32) {
        let mut node = ROOT;
        for b in key {
            node = match self.child(node, b) {
                Some(next) => next,
                None => {
                    let next = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
                    self.nodes.push(Node::default());
                    let edges = &mut self.nodes[node as usize].next;
                    let at = edges.partition_point(|(e, _)| *e < b);
                    edges.insert(at, (b, next));
                    next
                }
            };
        }
        self.nodes[node as usize].ends.push(id);
    }

    pub(crate) fn child(&self, node: u32, b: u8) -> Option<u32> {
        let edges = &self.nodes.get(node as usize)?.next;
        edges
            .binary_search_by_key(&b, |(e, _)| *e)
            .ok()
            .map(|k| edges[k].1)
    }

    pub(crate) fn ends(&self, node: u32) -> &[u32] {
        self.nodes
            .get(node as usize)
            .map_or(&[], |n| n.ends.as_slice())
    }

    pub(crate) fn leads_on(&self, node: u32) -> bool {
        self.nodes
            .get(node as usize)
            .is_some_and(|n| !n.next.is_empty())
    }
}

impl Drop for Trie {
    /// The edges spell the credentials.
    fn drop(&mut self) {
        for node in &mut self.nodes {
            for (b, _) in &mut node.next {
                b.zeroize();
            }
        }
    }
}
