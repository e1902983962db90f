//! Commands for the fixtures that change this machine's network (`nft`, `ip`), each with its
//! output in its error; and the nftables tables of the root namespace that fixtures make
//! (named for their process, so that those of a process that is gone can be removed).

use std::io;
use std::process::{Command, Stdio};

/// A name for an nftables table of this process in the root namespace (`le_<pid>_<what>_<n>`),
/// that [`sweep_tables`] removes once the process is gone.
pub(crate) fn table_name(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("le_{}_{what}_{n}", std::process::id())
}

/// Replaces table `inet <table>` of the root namespace, in one step, by one whose input chain
/// has `rules` (one per line).
pub(crate) fn replace_input_table(table: &str, rules: &str) -> io::Result<()> {
    // Declaring the table first makes the delete succeed when there is none; the whole script
    // is applied atomically.
    let script = format!(
        "table inet {table}\ndelete table inet {table}\n\
         table inet {table} {{\n chain input {{\n type filter hook input priority 0; policy accept;\n {rules}\n }}\n}}\n"
    );
    run_with_input(&["nft", "-f", "-"], &script)
}

/// Removes table `inet <table>` of the root namespace, if there is one.
pub(crate) fn delete_table(table: &str) -> io::Result<()> {
    run_with_input(
        &["nft", "-f", "-"],
        &format!("table inet {table}\ndelete table inet {table}\n"),
    )
}

/// Removes the root namespace's tables named by [`table_name`] for processes no longer
/// running.
pub(crate) fn sweep_tables() {
    let Ok(list) = output(&["nft", "list", "tables"]) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.strip_prefix("table inet ") else {
            continue;
        };
        let Some(pid) = name.strip_prefix("le_").and_then(|r| r.split('_').next()) else {
            continue;
        };
        if !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !std::path::Path::new("/proc").join(pid).exists()
        {
            let _ = delete_table(name);
        }
    }
}

/// Runs a command; an error holds its output.
#[cfg_attr(not(all(feature = "netns", target_os = "linux")), allow(dead_code))]
pub(crate) fn run(args: &[&str]) -> io::Result<()> {
    output(args).map(drop)
}

/// Runs a command and returns its standard output; an error holds its standard error.
pub(crate) fn output(args: &[&str]) -> io::Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()?;
    checked(args, out)
}

/// Runs a command with `input` on its standard input; an error holds its standard error.
pub(crate) fn run_with_input(args: &[&str], input: &str) -> io::Result<()> {
    use std::io::Write as _;
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())?;
    checked(args, child.wait_with_output()?).map(drop)
}

/// The standard output of a command that succeeded; else an error naming it, its status and
/// its standard error.
pub(crate) fn checked(args: &[&str], out: std::process::Output) -> io::Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
