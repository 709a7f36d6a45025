#![allow(clippy::print_stdout, clippy::disallowed_methods)] // a build script reads its environment and speaks to cargo on stdout

//! Names the commit keyaudit is built from, for `keyaudit --version`: `KEYAUDIT_BUILD_COMMIT` when set (a build
//! from a source archive), else `git rev-parse` of the checkout (with `-dirty` for uncommitted changes), else
//! `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=KEYAUDIT_BUILD_COMMIT");
    let commit = std::env::var("KEYAUDIT_BUILD_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        // Rebuild when HEAD moves (a commit, a checkout) or the index changes (dirtiness).
        if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
            for file in ["HEAD", "index", "packed-refs"] {
                println!("cargo:rerun-if-changed={dir}/{file}");
            }
            if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
                println!("cargo:rerun-if-changed={dir}/{head_ref}");
            }
        }
        let hash = git(&["rev-parse", "--short=12", "HEAD"])?;
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Some(if dirty { format!("{hash}-dirty") } else { hash })
    });
    println!("cargo:rustc-env=KEYAUDIT_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}
