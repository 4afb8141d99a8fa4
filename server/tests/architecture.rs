//! The layout rules of docs/ARCHITECTURE.md ("Crates"), checked on the source: no file of
//! the server imports a file that imports it back, directly or through others; and the
//! core stays free of I/O and of any backend.

use std::path::Path;

use testkit::layout::{ModPath, cycles, import_graph, show};

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_import_circles() {
    let graph = import_graph(&src());
    assert!(
        graph.len() > 20,
        "found the modules: {:?}",
        graph.keys().map(show).collect::<Vec<_>>()
    );
    let found: Vec<String> = cycles(&graph)
        .iter()
        .map(|c| c.iter().map(show).collect::<Vec<_>>().join(" <-> "))
        .collect();
    assert!(found.is_empty(), "import circles: {found:#?}");
}

#[test]
fn the_core_imports_nothing_but_the_core() {
    let graph = import_graph(&src());
    let is_core = |m: &ModPath| m.first().map(String::as_str) == Some("core");
    for (module, imports) in graph.iter().filter(|(m, _)| is_core(m)) {
        for i in imports {
            assert!(is_core(i), "{} imports {}", show(module), show(i));
        }
    }
}

#[test]
fn only_the_server_wiring_knows_a_backend_and_backends_do_not_know_each_other() {
    let graph = import_graph(&src());
    for name in ["broker", "nats"] {
        let inside = |m: &ModPath| m.starts_with(&["backend".to_string(), name.to_string()]);
        for (module, imports) in &graph {
            // The wiring chooses the backend; the footprint test measures the real one.
            let wiring = [
                vec!["server".to_string()],
                vec!["conn".into(), "footprint".into()],
            ];
            if inside(module) || wiring.contains(module) {
                continue;
            }
            for i in imports {
                assert!(
                    !inside(i),
                    "{} knows the {name} backend ({})",
                    show(module),
                    show(i)
                );
            }
        }
    }
}
