//! Keyset pagination. Lists are ordered newest first by id (UUID v7 ids sort by creation
//! time); a cursor is the id of the last item returned, so pages never skip or repeat rows
//! when rows are inserted between requests, and no query uses OFFSET.

use uuid::Uuid;

/// The default page size.
pub const DEFAULT_TAKE: u16 = 50;
/// The largest page size.
pub const MAX_TAKE: u16 = 200;

/// Which page to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    take: u16,
    after: Option<Uuid>,
}

/// `take` is outside `1..=200`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("take must be between 1 and {MAX_TAKE}")]
pub struct InvalidTake;

impl PageRequest {
    /// A page of `take` items (default 50) after the item with id `after`.
    ///
    /// # Errors
    /// [`InvalidTake`] when `take` is outside `1..=200`.
    pub fn parse(take: Option<i64>, after: Option<Uuid>) -> Result<Self, InvalidTake> {
        let take = match take {
            None => DEFAULT_TAKE,
            Some(t) if (1..=i64::from(MAX_TAKE)).contains(&t) => t as u16,
            Some(_) => return Err(InvalidTake),
        };
        Ok(Self { take, after })
    }

    /// The first page of the default size.
    pub fn first() -> Self {
        Self { take: DEFAULT_TAKE, after: None }
    }

    /// How many items the caller asked for.
    pub fn take(&self) -> u16 {
        self.take
    }

    /// How many rows a store should fetch: one more than asked, to learn whether more exist.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.take) + 1
    }

    /// Only items with an id strictly below this one (the previous page's last item).
    pub fn after(&self) -> Option<Uuid> {
        self.after
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// The id to continue after, when more items exist.
    pub next_after: Option<Uuid>,
}

impl<T> Page<T> {
    /// Builds a page from rows fetched with [`PageRequest::fetch_limit`], ordered newest first.
    pub fn from_rows(mut rows: Vec<T>, request: &PageRequest, id_of: impl Fn(&T) -> Uuid) -> Self {
        let take = usize::from(request.take());
        let has_more = rows.len() > take;
        rows.truncate(take);
        let next_after = if has_more { rows.last().map(&id_of) } else { None };
        Self { items: rows, next_after }
    }

    /// Whether another page exists.
    pub fn has_more(&self) -> bool {
        self.next_after.is_some()
    }

    /// Maps the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_after: self.next_after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_defaults_to_fifty_and_is_bounded() {
        assert_eq!(PageRequest::parse(None, None).map(|p| p.take()), Ok(50));
        assert_eq!(PageRequest::parse(Some(200), None).map(|p| p.take()), Ok(200));
        assert_eq!(PageRequest::parse(Some(1), None).map(|p| p.take()), Ok(1));
        assert_eq!(PageRequest::parse(Some(0), None), Err(InvalidTake));
        assert_eq!(PageRequest::parse(Some(201), None), Err(InvalidTake));
        assert_eq!(PageRequest::parse(Some(-5), None), Err(InvalidTake));
    }

    #[test]
    fn a_page_reports_more_only_when_an_extra_row_was_fetched() {
        let req = PageRequest::parse(Some(2), None).unwrap();
        let ids: Vec<Uuid> = (0..3u128).map(Uuid::from_u128).collect();
        let page = Page::from_rows(ids.clone(), &req, |u| *u);
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next_after, Some(ids[1]));
        let page = Page::from_rows(ids[..2].to_vec(), &req, |u| *u);
        assert!(!page.has_more());
    }
}
