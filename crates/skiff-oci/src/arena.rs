//! skiff-oci's allocator. An invocation lives a few milliseconds and frees
//! little before it exits; musl's allocator hands freed memory back to the
//! kernel at once, so a `run` made ~70 mmap, munmap and madvise calls (and
//! faulted fresh pages in after each). Here the first few MiB are a bump
//! pointer in one mapping, made at the first allocation and touched only as
//! used; a free gives memory back only when it is the latest allocation. What
//! does not fit, and everything once the arena is spent or sealed, comes from
//! the system allocator: a command that loops for as long as the caller
//! likes (`events`) seals it first, since what it frees out of order would
//! otherwise stay taken until all of the arena had been touched. (The
//! terminal relay of a foreground `run` or `exec` frees in order.)
//! Both builds use it; it matters on musl.
//!
//! A clone of this process (init, exec's children) gets a copy of the arena
//! with the rest of its memory; exec's child that shares our memory bumps the
//! same pointer while we sleep (CLONE_VFORK), which the atomics keep sound.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Address space set aside; pages count only once touched.
const SIZE: usize = 8 << 20;
/// `base` before the mapping exists, and after it could not be made.
/// Every block starts on malloc's alignment, whatever its layout asks:
/// code that casts a byte buffer to a C struct relies on it (nix builds
/// sendmsg's control messages in a `Vec<u8>`; a debug build's alignment
/// check caught a cmsghdr at an odd address).
const MIN_ALIGN: usize = 16;
const UNMAPPED: usize = 0;
const FAILED: usize = usize::MAX;

pub struct Arena {
    base: AtomicUsize,
    /// Offset of the first free byte.
    next: AtomicUsize,
}

impl Arena {
    pub const fn new() -> Arena {
        Arena {
            base: AtomicUsize::new(UNMAPPED),
            next: AtomicUsize::new(0),
        }
    }

    /// The mapping's address, made on first use; None if it cannot be made.
    fn base(&self) -> Option<usize> {
        match self.base.load(Ordering::Acquire) {
            FAILED => return None,
            UNMAPPED => {}
            b => return Some(b),
        }
        // SAFETY: a new private anonymous mapping that nothing else uses.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        let made = if p == libc::MAP_FAILED {
            FAILED
        } else {
            p as usize
        };
        match self
            .base
            .compare_exchange(UNMAPPED, made, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => (made != FAILED).then_some(made),
            Err(other) => {
                if made != FAILED {
                    // SAFETY: another thread won; ours is unused.
                    unsafe { libc::munmap(p, SIZE) };
                }
                (other != FAILED).then_some(other)
            }
        }
    }

    /// From here on, every allocation comes from the system allocator; blocks
    /// already in the arena stay valid (and are not reused).
    pub fn seal(&self) {
        self.next.store(SIZE, Ordering::Release);
    }

    /// Offset of `ptr` in the arena, if it is one of ours.
    fn offset(&self, ptr: *mut u8) -> Option<usize> {
        let base = self.base.load(Ordering::Acquire);
        let addr = ptr as usize;
        (base != UNMAPPED && base != FAILED && addr >= base && addr < base + SIZE)
            .then(|| addr - base)
    }

    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let base = self.base()?;
        let mut cur = self.next.load(Ordering::Acquire);
        loop {
            let align = layout.align().max(MIN_ALIGN);
            let start = (base + cur).checked_next_multiple_of(align)? - base;
            let end = start.checked_add(layout.size())?;
            if end > SIZE {
                return None;
            }
            match self
                .next
                .compare_exchange_weak(cur, end, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some((base + start) as *mut u8),
                Err(now) => cur = now,
            }
        }
    }
}

// SAFETY: every block handed out is a distinct range of the mapping (the
// bump is one atomic step) or comes from System; blocks are only ever given
// back to where they came from (`offset` tells them apart).
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.offset(ptr) {
            // The latest allocation is popped (Release: whoever reuses the
            // place sees our last writes to it); others stay until exit.
            Some(off) => {
                let _ = self.next.compare_exchange(
                    off + layout.size(),
                    off,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
            // SAFETY: not ours, so System's, with the layout it was given.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(off) = self.offset(ptr) else {
            // SAFETY: System's block, passed on as the caller gave it.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        // The latest allocation grows or shrinks in place.
        if off + new_size <= SIZE
            && self
                .next
                .compare_exchange(
                    off + layout.size(),
                    off + new_size,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            return ptr;
        }
        // Any other block shrinks where it is (its tail is just not reused).
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: GlobalAlloc::realloc's contract makes this layout valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid layout, as above.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long;
            // the old one is then given back (popped if still the latest).
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    // SAFETY (for the unsafe blocks below): every block is used only while
    // live, with the layout it was allocated with, as GlobalAlloc requires.
    #[test]
    fn blocks_are_distinct_aligned_and_grow_in_place() {
        let a = Arena::new();
        unsafe {
            let p = a.alloc(l(24, 8));
            let q = a.alloc(l(100, 64));
            assert_eq!(q as usize % 64, 0);
            assert!(q as usize >= p as usize + 24);
            // q is the latest: it grows where it is; p is not: it moves, its
            // bytes with it.
            assert_eq!(a.realloc(q, l(100, 64), 4000), q);
            p.write_bytes(7, 24);
            let p2 = a.realloc(p, l(24, 8), 48);
            assert_ne!(p2, p);
            assert_eq!(*p2.add(23), 7);
            // Shrinking stays in place, latest or not.
            assert_eq!(a.realloc(q, l(4000, 64), 10), q);
            // Beyond the arena: System's, and given back to it.
            let big = l(SIZE + 1, 8);
            let s = a.alloc(big);
            assert!(!s.is_null() && a.offset(s).is_none());
            a.dealloc(s, big);
            // The latest is popped: the next allocation reuses its place.
            a.dealloc(p2, l(48, 8));
            assert_eq!(a.alloc(l(48, 8)), p2);
        }
    }

    #[test]
    fn page_alignment_and_sealing() {
        let a = Arena::new();
        unsafe {
            let small = a.alloc(l(1, 1));
            let paged = a.alloc(l(10, 8192));
            assert_eq!(paged as usize % 8192, 0);
            // Freeing the padded block pops back to its start only.
            a.dealloc(paged, l(10, 8192));
            let again = a.alloc(l(1, 1));
            assert!(again as usize > small as usize);
            // Byte buffers too start where malloc's would.
            let odd = a.alloc(l(3, 1));
            assert_eq!(odd as usize % MIN_ALIGN, 0);
            a.seal();
            let after = a.alloc(l(16, 8));
            assert!(a.offset(after).is_none(), "sealed: System's");
            a.dealloc(after, l(16, 8));
            // Old blocks stay valid; one that grows moves to System.
            let moved = a.realloc(again, l(1, 1), 64);
            assert!(a.offset(moved).is_none());
            a.dealloc(moved, l(64, 1));
        }
    }
}
