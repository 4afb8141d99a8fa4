//! Checks on a crate's source layout: which of its files import which, and whether any of
//! them import each other in a circle (docs/ARCHITECTURE.md, "Crates": no import circles).
//!
//! A file *imports* another when it names a path inside it (`use crate::core::hub::Hub;`,
//! `crate::core::frames::error(..)`, `super::flow::Flow`). Declaring a child module
//! (`mod flow;`) is not an import. Comments are ignored. This reads source text, not the
//! compiler's view, which is enough for the plain paths this workspace uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module's path inside its crate: `["core", "hub"]` for `src/core/hub.rs`; empty for
/// the crate root.
pub type ModPath = Vec<String>;

/// Every module of the crate whose sources are in `src`, with the modules it imports.
pub fn import_graph(src: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut files = Vec::new();
    collect(src, src, &mut files);
    let modules: BTreeSet<ModPath> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut graph = BTreeMap::new();
    for (module, text) in &files {
        let mut imports = BTreeSet::new();
        for path in referenced_paths(module, &strip_comments(text)) {
            if let Some(target) = resolve(&modules, &path)
                && target != *module
            {
                imports.insert(target);
            }
        }
        graph.insert(module.clone(), imports);
    }
    graph
}

/// Pairs of modules that import each other, directly or through others: every cycle of
/// the graph, each given once as the list of its modules.
pub fn cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    // Tarjan's strongly connected components; a component of two or more is a cycle.
    struct State<'a> {
        graph: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        next: usize,
        found: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let Some((w, _)) = graph.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).map(|l| {
                    *l = (*l).min(lw);
                    *l
                });
                let _ = lv;
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                if let Some(l) = s.low.get_mut(v) {
                    *l = (*l).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

/// `a/b/c` for printing.
pub fn show(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(ModPath, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, out);
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        // The binary's main.rs is its own crate root; it may use the library freely.
        if rel == Path::new("main.rs") {
            continue;
        }
        out.push((parts, text));
    }
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // Good enough for this code: no `//` inside the string literals that name paths.
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path a file names that starts at `crate::` or `super::`, made absolute. Inside an
/// inline module (`mod tests { .. }`), `super` is the file itself.
fn referenced_paths(module: &ModPath, text: &str) -> Vec<ModPath> {
    let inline_from = inline_module_start(text).unwrap_or(text.len());
    let mut out = Vec::new();
    for prefix in ["crate::", "super::"] {
        let mut at = 0;
        while let Some(i) = text[at..].find(prefix) {
            let start = at + i;
            at = start + prefix.len();
            let before = text[..start].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let base = match prefix {
                "crate::" => Vec::new(),
                _ if start >= inline_from => module.clone(),
                _ => parent(module),
            };
            for path in expand(&text[at..]) {
                let mut full = base.clone();
                full.extend(path);
                out.push(full);
            }
        }
    }
    out
}

/// Where the first inline module (`mod name {`) of a file starts.
fn inline_module_start(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let t = t.strip_prefix("pub ").unwrap_or(t);
        if let Some(rest) = t.strip_prefix("mod ")
            && rest.trim_end().ends_with('{')
        {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

fn parent(module: &ModPath) -> ModPath {
    let mut p = module.clone();
    p.pop();
    p
}

/// The paths at the start of `text`: `a::b::C` or `a::{b, c::d}`.
fn expand(text: &str) -> Vec<ModPath> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 {
            break;
        }
        segments.push(rest[..len].to_string());
        rest = &rest[len..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => return vec![segments],
        }
    }
    let Some(inner) = rest.strip_prefix('{') else {
        return vec![segments];
    };
    let mut depth = 1;
    let mut end = inner.len();
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let body = &inner[..end];
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.extend(prefixed(&segments, body[start..i].trim()));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.extend(prefixed(&segments, body[start..].trim()));
    out
}

fn prefixed(prefix: &[String], item: &str) -> Vec<ModPath> {
    if item.is_empty() || item == "self" {
        return vec![prefix.to_vec()];
    }
    expand(item)
        .into_iter()
        .map(|p| {
            let mut full = prefix.to_vec();
            full.extend(p.into_iter().filter(|s| s != "self"));
            full
        })
        .collect()
}

/// The module a path lands in: its longest prefix that is a module.
fn resolve(modules: &BTreeSet<ModPath>, path: &ModPath) -> Option<ModPath> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> ModPath {
        s.split("::")
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn paths_are_expanded_and_made_absolute() {
        let text = "use crate::core::{hub::Hub, frames::{self, Format}};\n\
                    // use crate::ignored::x;\n\
                    let x = crate::cmd::execute(r, s);\n\
                    use super::flow::Flow;\n\
                    mod tests {\n\
                    use super::*;\n\
                    }";
        let mut got = referenced_paths(&m("cmd::quit"), &strip_comments(text));
        got.sort();
        assert_eq!(
            got,
            vec![
                m("cmd::execute"),
                m("cmd::flow::Flow"),
                m("cmd::quit"),
                m("core::frames"),
                m("core::frames::Format"),
                m("core::hub::Hub"),
            ]
        );
    }

    #[test]
    fn a_circle_of_any_length_is_found() {
        let mut g: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
        g.insert(m("a"), [m("b")].into());
        g.insert(m("b"), [m("c")].into());
        g.insert(m("c"), [m("a")].into());
        g.insert(m("d"), [m("a")].into());
        assert_eq!(cycles(&g), vec![vec![m("a"), m("b"), m("c")]]);
        g.insert(m("c"), BTreeSet::new());
        assert!(cycles(&g).is_empty());
    }
}
