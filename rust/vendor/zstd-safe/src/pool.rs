//! eventpipe patch (see rust/vendor/README.md): contexts are reused instead of freed.
//!
//! Creating a zstd context runs CPUID three times (`ZSTD_cpuSupportsBmi2` in `ZSTD_initCCtx` and
//! `ZSTD_initDCtx_internal`), which traps to the hypervisor in a virtual machine, and its workspace is allocated
//! anew on first use. parquet makes a compressor and a decompressor for every column chunk it writes, so a
//! writer of many small files paid that thousands of times per second. A dropped context is reset to the
//! state of a new one (`ZSTD_reset_session_and_parameters`) and kept here for the next `create`.

use core::marker::PhantomData;
use core::ptr::NonNull;
use std::sync::Mutex;
use std::vec::Vec;

/// How many free contexts of each kind are kept; beyond that a dropped context is freed.
const MAX_FREE: usize = 32;

struct Free<T>(NonNull<T>);

// Safety: a zstd context is a plain heap allocation with no thread-local state (as `CCtx`'s own `Send` says).
unsafe impl<T> Send for Free<T> {}

pub(crate) struct Pool<T> {
    free: Mutex<Vec<Free<T>>>,
    kind: PhantomData<T>,
}

impl<T> Pool<T> {
    const fn new() -> Self {
        Self { free: Mutex::new(Vec::new()), kind: PhantomData }
    }

    /// A context reset by `give`, if one is free.
    pub(crate) fn take(&self) -> Option<NonNull<T>> {
        self.free.lock().ok()?.pop().map(|free| free.0)
    }

    /// Keeps a context that was reset to its defaults; `false` means the caller must free it.
    pub(crate) fn give(&self, context: NonNull<T>) -> bool {
        match self.free.lock() {
            Ok(mut free) if free.len() < MAX_FREE => {
                free.push(Free(context));
                true
            }
            _ => false,
        }
    }
}

// Safety (Sync): the contexts are only reached through the mutex.
unsafe impl<T> Sync for Pool<T> {}

pub(crate) static COMPRESSION: Pool<zstd_sys::ZSTD_CCtx> = Pool::new();
pub(crate) static DECOMPRESSION: Pool<zstd_sys::ZSTD_DCtx> = Pool::new();
