//! Everything the binary prints on stdout goes through [`outln!`] and [`out!`].
//!
//! `println!` panics when stdout is a closed pipe (`latchkey saml decode FILE | head -1`
//! exited 101). These report the write error instead, the command stops there, and `main`
//! turns a closed pipe into a quiet success in one place: the reader has what it wanted.

use std::fmt;
use std::io::Write;

/// Writes to stdout, reporting (not panicking on) write errors.
pub fn write(args: fmt::Arguments<'_>, newline: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_fmt(args)?;
    if newline {
        stdout.write_all(b"\n")?;
    }
    Ok(())
}

/// `println!` that returns the write error (see the module docs).
macro_rules! outln {
    () => {
        $crate::stdout::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*), true)
    };
}
pub(crate) use outln;

/// `print!` that returns the write error (see the module docs).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*), false)
    };
}
pub(crate) use out;

/// Whether `err` (or any error in its chain) is a write to a closed pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
