//! The fixtures' own wall-clock preload library, for programs libfaketime cannot be preloaded
//! into (`faketime::shim_library` compiles it with `rustc` as a `cdylib`; it is not part of the
//! crate's build). It moves the wall clocks by the seconds in the file named by
//! `FAKETIME_TIMESTAMP_FILE`, re-read on every call, through raw system calls: it allocates
//! nothing and resolves nothing, so a program's allocator may call it while it starts.
#![allow(unsafe_code, non_camel_case_types)]

use std::ffi::{c_char, c_int, c_long, c_void};
use std::sync::atomic::{AtomicI64, Ordering};

#[repr(C)]
pub struct timespec {
    tv_sec: i64,
    tv_nsec: c_long,
}

#[repr(C)]
pub struct timeval {
    tv_sec: i64,
    tv_usec: i64,
}

#[link(name = "c")]
unsafe extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn getenv(name: *const c_char) -> *mut c_char;
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn read(fd: c_int, buf: *mut c_void, count: usize) -> isize;
    fn close(fd: c_int) -> c_int;
}

#[cfg(target_arch = "x86_64")]
const SYS_CLOCK_GETTIME: c_long = 228;
#[cfg(target_arch = "aarch64")]
const SYS_CLOCK_GETTIME: c_long = 113;

const CLOCK_REALTIME: c_int = 0;
const CLOCK_REALTIME_COARSE: c_int = 5;
const CLOCK_REALTIME_ALARM: c_int = 8;
const CLOCK_TAI: c_int = 11;
const O_RDONLY_CLOEXEC: c_int = 0o2_000_000;

/// The last offset read, for when the file cannot be read (it is being replaced).
static LAST: AtomicI64 = AtomicI64::new(0);

/// The offset in seconds: the file named by `FAKETIME_TIMESTAMP_FILE`, re-read on every call,
/// holding `+N` or `-N` (libfaketime's relative form). Allocates nothing.
fn offset() -> i64 {
    let path = unsafe { getenv(c"FAKETIME_TIMESTAMP_FILE".as_ptr()) };
    if path.is_null() {
        return 0;
    }
    let fd = unsafe { open(path, O_RDONLY_CLOEXEC) };
    if fd < 0 {
        return LAST.load(Ordering::Relaxed);
    }
    let mut buf = [0u8; 32];
    let n = unsafe { read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    unsafe { close(fd) };
    if n <= 0 {
        return LAST.load(Ordering::Relaxed);
    }
    let text = &buf[..n as usize];
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let mut value: i64 = 0;
    let mut any = false;
    for &b in digits {
        if !b.is_ascii_digit() {
            break;
        }
        any = true;
        value = value.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if !any {
        return LAST.load(Ordering::Relaxed);
    }
    let value = if negative { -value } else { value };
    LAST.store(value, Ordering::Relaxed);
    value
}

fn real(clock: c_int, ts: *mut timespec) -> c_int {
    unsafe { syscall(SYS_CLOCK_GETTIME, clock as c_long, ts) as c_int }
}

/// `clock_gettime`: the kernel's clocks through the system call, the wall clocks moved by the
/// offset.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_gettime(clock: c_int, ts: *mut timespec) -> c_int {
    let result = real(clock, ts);
    if result == 0
        && !ts.is_null()
        && matches!(
            clock,
            CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI
        )
    {
        unsafe { (*ts).tv_sec += offset() };
    }
    result
}

/// `gettimeofday`: the moved wall clock in microseconds (a time zone is never filled in).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gettimeofday(tv: *mut timeval, _tz: *mut c_void) -> c_int {
    if tv.is_null() {
        return 0;
    }
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let result = unsafe { clock_gettime(CLOCK_REALTIME, &mut ts) };
    if result == 0 {
        unsafe {
            (*tv).tv_sec = ts.tv_sec;
            (*tv).tv_usec = ts.tv_nsec as i64 / 1000;
        }
    }
    result
}

/// `time`: the moved wall clock in seconds.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn time(out: *mut i64) -> i64 {
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if unsafe { clock_gettime(CLOCK_REALTIME, &mut ts) } != 0 {
        return -1;
    }
    if !out.is_null() {
        unsafe { *out = ts.tv_sec };
    }
    ts.tv_sec
}
