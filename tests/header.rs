//! The committed header must be what cbindgen makes from the source.
//! `TU_WRITE_HEADER=1 cargo test --test header` (or `make header`) rewrites it.

use std::path::PathBuf;

fn generate() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let (major, minor, patch) = (
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    );
    // Version macros are written from Cargo.toml, never by hand.
    config.after_includes = Some(format!(
        "\n/* The version this header belongs to; tu_version() gives the library's. */\n\
         #define TU_VERSION \"{}\"\n#define TU_VERSION_MAJOR {major}\n#define TU_VERSION_MINOR {minor}\n\
         #define TU_VERSION_PATCH {patch}\n#define TU_VERSION_NUMBER ({major} * 10000 + {minor} * 100 + {patch})\n",
        env!("CARGO_PKG_VERSION")
    ));
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("UTF-8 header")
}

#[test]
fn header_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/transporturl.h");
    let fresh = generate();
    if std::env::var_os("TU_WRITE_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("write header");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/transporturl.h is out of date with the Rust source: run `make header` and commit it"
    );
}
