//! Finds libwschat and links it dynamically, with an rpath so that tests
//! and examples run without LD_LIBRARY_PATH. In order:
//!
//! 1. `WSCHAT_LIB_DIR`: a directory holding libwschat.so (e.g. a build
//!    variant's `build/<name>/lib`);
//! 2. the source tree this crate sits in, `../../lib`, when it holds
//!    libwschat.so: the library these bindings were written against;
//! 3. an installed library, through `pkg-config --libs libwschat`
//!    (`make install` writes libwschat.pc; `PKG_CONFIG` names another
//!    pkg-config).
//!
//! Anything else is a build error saying what to do.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn link_dir(dir: &Path) {
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=WSCHAT_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");

    if let Some(dir) = env::var_os("WSCHAT_LIB_DIR") {
        let dir = PathBuf::from(dir);
        let dir = dir.canonicalize().unwrap_or(dir);
        if !dir.join("libwschat.so").exists() {
            panic!(
                "WSCHAT_LIB_DIR={}: no libwschat.so there (build it with make)",
                dir.display()
            );
        }
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("libwschat.so").display()
        );
        link_dir(&dir);
        println!("cargo:rustc-link-lib=dylib=wschat");
        return;
    }

    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let tree = manifest.join("../../lib");
    if tree.join("libwschat.so").exists() {
        let tree = tree.canonicalize().unwrap_or(tree);
        println!(
            "cargo:rerun-if-changed={}",
            tree.join("libwschat.so").display()
        );
        link_dir(&tree);
        println!("cargo:rustc-link-lib=dylib=wschat");
        return;
    }

    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    match Command::new(&pkg_config)
        .args(["--libs", "libwschat"])
        .output()
    {
        Ok(out) if out.status.success() => {
            let flags = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut linked = false;
            for flag in flags.split_whitespace() {
                if let Some(dir) = flag.strip_prefix("-L") {
                    link_dir(Path::new(dir));
                } else if flag == "-lwschat" {
                    // Only libwschat itself: its other dependencies
                    // (libuv) come with the shared library.
                    println!("cargo:rustc-link-lib=dylib=wschat");
                    linked = true;
                }
            }
            if !linked {
                panic!(
                    "{} --libs libwschat gave no -lwschat: {}",
                    pkg_config,
                    flags.trim()
                );
            }
        }
        _ => panic!(
            "libwschat not found: set WSCHAT_LIB_DIR to a directory holding \
             libwschat.so, run `make` in the source tree ({}), or install it \
             (`make install`) where pkg-config finds libwschat.pc",
            manifest.join("../..").display()
        ),
    }
}
