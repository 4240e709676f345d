//! Cycles of a directed graph: its strongly connected components of more than one node, each
//! shown by one shortest cycle through its first node.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Nodes that reach each other: a strongly connected component of two or more nodes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tangle<N> {
    /// A shortest cycle through the component's smallest node, that node first and last.
    pub witness: Vec<N>,
    /// Every node of the component.
    pub members: BTreeSet<N>,
}

/// Every strongly connected component of two or more nodes (a node's edge to itself is no
/// cycle here), in the order of their smallest nodes.
pub fn tangles<N: Ord + Clone>(next: &BTreeMap<N, BTreeSet<N>>) -> Vec<Tangle<N>> {
    let mut found: Vec<Tangle<N>> = components(next)
        .into_iter()
        .filter(|component| component.len() > 1)
        .filter_map(|members| {
            let start = members.iter().next()?.clone();
            let witness = shortest_cycle(next, &members, &start)?;
            Some(Tangle { witness, members })
        })
        .collect();
    found.sort();
    found
}

/// Tarjan's algorithm over the graph, nodes visited in order.
fn components<N: Ord + Clone>(next: &BTreeMap<N, BTreeSet<N>>) -> Vec<BTreeSet<N>> {
    let mut search = Tarjan {
        next,
        order: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in next.keys() {
        if !search.order.contains_key(node) {
            search.visit(node);
        }
    }
    search.found
}

struct Tarjan<'a, N> {
    next: &'a BTreeMap<N, BTreeSet<N>>,
    order: BTreeMap<N, usize>,
    low: BTreeMap<N, usize>,
    stack: Vec<N>,
    on_stack: BTreeSet<N>,
    found: Vec<BTreeSet<N>>,
}

impl<N: Ord + Clone> Tarjan<'_, N> {
    fn visit(&mut self, node: &N) {
        let number = self.order.len();
        self.order.insert(node.clone(), number);
        self.low.insert(node.clone(), number);
        self.stack.push(node.clone());
        self.on_stack.insert(node.clone());
        let empty = BTreeSet::new();
        let next = self.next;
        for to in next.get(node).unwrap_or(&empty) {
            if !self.order.contains_key(to) {
                self.visit(to);
                self.lower(node, self.low[to]);
            } else if self.on_stack.contains(to) {
                self.lower(node, self.order[to]);
            }
        }
        if self.low[node] == self.order[node] {
            let mut component = BTreeSet::new();
            while let Some(member) = self.stack.pop() {
                self.on_stack.remove(&member);
                let done = member == *node;
                component.insert(member);
                if done {
                    break;
                }
            }
            self.found.push(component);
        }
    }

    fn lower(&mut self, node: &N, to: usize) {
        if let Some(low) = self.low.get_mut(node) {
            *low = (*low).min(to);
        }
    }
}

/// Breadth first from `start` inside `component` back to `start`.
fn shortest_cycle<N: Ord + Clone>(
    next: &BTreeMap<N, BTreeSet<N>>,
    component: &BTreeSet<N>,
    start: &N,
) -> Option<Vec<N>> {
    let mut came_from: BTreeMap<N, N> = BTreeMap::new();
    let mut queue = VecDeque::from([start.clone()]);
    while let Some(node) = queue.pop_front() {
        for to in next.get(&node).into_iter().flatten() {
            if !component.contains(to) {
                continue;
            }
            if to == start {
                let mut cycle = vec![start.clone(), node.clone()];
                let mut at = node;
                while let Some(before) = came_from.get(&at) {
                    cycle.push(before.clone());
                    at = before.clone();
                }
                cycle.reverse();
                if cycle.first() != Some(start) {
                    cycle.insert(0, start.clone());
                }
                return Some(cycle);
            }
            if !came_from.contains_key(to) && to != start {
                came_from.insert(to.clone(), node.clone());
                queue.push_back(to.clone());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(
        edges: &[(&'static str, &'static str)],
    ) -> BTreeMap<&'static str, BTreeSet<&'static str>> {
        let mut next: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
        for (from, to) in edges {
            next.entry(*from).or_default().insert(*to);
            next.entry(*to).or_default();
        }
        next
    }

    fn cycles(next: &BTreeMap<&'static str, BTreeSet<&'static str>>) -> Vec<Vec<&'static str>> {
        tangles(next).into_iter().map(|t| t.witness).collect()
    }

    #[test]
    fn a_graph_without_cycles_has_none() {
        let next = graph(&[("a", "b"), ("b", "c"), ("a", "c"), ("c", "c")]);
        assert!(cycles(&next).is_empty());
    }

    #[test]
    fn each_component_is_shown_by_a_shortest_cycle_through_its_first_node() {
        let next = graph(&[
            ("exec", "machine"),
            ("machine", "query"),
            ("query", "exec"),
            ("machine", "search"),
            ("search", "machine"),
            ("x", "y"),
            ("y", "x"),
            ("lone", "exec"),
        ]);
        assert_eq!(
            cycles(&next),
            [
                vec!["exec", "machine", "query", "exec"],
                vec!["x", "y", "x"]
            ]
        );
        let members: Vec<&str> = tangles(&next)[0].members.iter().copied().collect();
        assert_eq!(members, ["exec", "machine", "query", "search"]);
    }

    #[test]
    fn the_witness_is_shortest() {
        let next = graph(&[("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("b", "a")]);
        assert_eq!(cycles(&next), [vec!["a", "b", "a"]]);
    }
}
