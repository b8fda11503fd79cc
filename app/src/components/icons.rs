//! The interface's one icon set: inline SVG line icons on a 24-pixel grid, drawn with the text
//! colour (so they follow the theme) and hidden from assistive technology — the control that
//! holds an icon carries the accessible name.

use leptos::prelude::*;

/// Which icon. A closed set, so a page cannot ask for one that is not drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Glyph {
    /// The platform's mark (back to all applications).
    Home,
    /// Settings (live mode's menu).
    Settings,
    /// Integrations (the builder's connections panel).
    Integrations,
    /// Edit in place.
    Pencil,
    /// More actions.
    More,
    /// Close a dialog or panel.
    Close,
    /// A section that folds open.
    Chevron,
}

impl Glyph {
    /// The path data, stroked.
    fn path(self) -> &'static str {
        match self {
            Glyph::Home => "M3 11.5 12 4l9 7.5M5.5 9.5V20h13V9.5M10 20v-5.5h4V20",
            Glyph::Settings => {
                "M12 15.2a3.2 3.2 0 1 0 0-6.4 3.2 3.2 0 0 0 0 6.4zM19.4 13.5l1.6 1.2-1.8 3.1-1.9-.7a7.4 7.4 0 0 1-2 1.2L15 20.2h-3.6l-.4-1.9a7.4 7.4 0 0 1-2-1.2l-1.9.7-1.8-3.1 1.6-1.2a7.6 7.6 0 0 1 0-2.4L5.3 9.9l1.8-3.1 1.9.7a7.4 7.4 0 0 1 2-1.2l.4-1.9H15l.4 1.9a7.4 7.4 0 0 1 2 1.2l1.9-.7 1.8 3.1-1.6 1.2a7.6 7.6 0 0 1 0 2.4z"
            }
            Glyph::Integrations => "M8 7h11m0 0-3-3m3 3-3 3M16 17H5m0 0 3-3m-3 3 3 3",
            Glyph::Pencil => "M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4",
            Glyph::More => "M5 12h.01M12 12h.01M19 12h.01",
            Glyph::Close => "M6 6l12 12M18 6 6 18",
            Glyph::Chevron => "m9 6 6 6-6 6",
        }
    }

    /// Dots need a heavier stroke to be seen.
    fn stroke_width(self) -> &'static str {
        match self {
            Glyph::More => "3",
            _ => "2",
        }
    }
}

/// An icon of the set, `size` pixels square.
#[component]
pub fn Icon(glyph: Glyph, #[prop(default = 20)] size: u32) -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width=size height=size aria-hidden="true" focusable="false">
            <path d=glyph.path() stroke="currentColor" stroke-width=glyph.stroke_width()
                stroke-linecap="round" stroke-linejoin="round" fill="none"/>
        </svg>
    }
}
