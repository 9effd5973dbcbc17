/**
 * A small drop-down menu for the Runs panel (a run's "More", "Export all", the presets of "+ Add run"): a
 * <details> element, so it opens without state, closed again by a pick, Escape or a click elsewhere.
 */
import { useEffect, useRef, type ReactNode } from 'react';

export function RunMenu(props: {
  label: ReactNode;
  /** The button's accessible name when its label is a symbol. */
  ariaLabel?: string;
  title?: string;
  testId?: string;
  className?: string;
  /** Opens to the left of its button (a menu at the right edge of a card). */
  alignRight?: boolean;
  children: ReactNode;
}) {
  const ref = useRef<HTMLDetailsElement>(null);
  useEffect(() => {
    const close = (e: Event) => {
      const menu = ref.current;
      if (!menu?.open) return;
      if (e instanceof KeyboardEvent ? e.key === 'Escape' : !menu.contains(e.target as Node)) menu.open = false;
    };
    document.addEventListener('pointerdown', close);
    document.addEventListener('keydown', close);
    return () => {
      document.removeEventListener('pointerdown', close);
      document.removeEventListener('keydown', close);
    };
  }, []);
  return (
    <details ref={ref} className={`run-menu ${props.alignRight ? 'run-menu-right' : ''}`}>
      <summary
        className={props.className ?? 'btn btn-ghost btn-sm'}
        aria-label={props.ariaLabel}
        title={props.title}
        data-testid={props.testId}
      >
        {props.label}
      </summary>
      <div className="run-menu-list" role="menu">
        {props.children}
      </div>
    </details>
  );
}

/** One pick of a RunMenu: closes the menu, then acts. */
export function RunMenuItem(props: {
  onClick(): void;
  disabled?: boolean;
  title?: string;
  testId?: string;
  children: ReactNode;
}) {
  return (
    <button
      type="button"
      role="menuitem"
      className="run-menu-item"
      disabled={props.disabled}
      title={props.title}
      data-testid={props.testId}
      onClick={(e) => {
        e.currentTarget.closest('details')?.removeAttribute('open');
        props.onClick();
      }}
    >
      {props.children}
    </button>
  );
}

/** A heading between a menu's items. */
export function RunMenuHeading({ children }: { children: ReactNode }) {
  return <div className="run-menu-heading">{children}</div>;
}
