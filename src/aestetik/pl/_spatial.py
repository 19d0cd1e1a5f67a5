"""Plots: domains over the H&E image (``pl.spatial``) and the training losses (``pl.loss``)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from aestetik._docs import doc_table_key_plot, inject_docs

__all__ = ["loss", "spatial"]


if TYPE_CHECKING:
    from spatialdata import SpatialData


def _base_palette(n: int) -> list[str]:
    import scanpy as sc

    pal = sc.pl.palettes.default_20 if n <= 20 else sc.pl.palettes.default_102
    return [pal[i % len(pal)] for i in range(n)]


def _matched_colors(labels: pd.Series, reference: pd.Series, ref_colors: dict[str, str]) -> dict[str, str]:
    """Colour each cluster like the reference category it overlaps most (one-to-one, Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    cats = list(labels.cat.categories)
    ref_cats = list(ref_colors)
    ok = reference.notna().to_numpy()
    table = pd.crosstab(labels[ok].astype(str), reference[ok].astype(str)).reindex(
        index=[str(c) for c in cats], columns=ref_cats, fill_value=0
    )
    rows, cols = linear_sum_assignment(-table.to_numpy())
    out = {str(cats[r]): ref_colors[ref_cats[c]] for r, c in zip(rows, cols, strict=True) if table.iat[r, c] > 0}
    spare = [c for c in _base_palette(len(ref_cats) + len(cats)) if c not in set(out.values())]
    for c in cats:
        out.setdefault(str(c), spare.pop(0))
    return out


def _finish(fig: Figure, axes: Any, *, own_figure: bool, show: bool | None, return_fig: bool) -> Any:
    """The scanpy convention: the figure with ``return_fig``, ``None`` after showing, else the axes."""
    if return_fig:
        return fig
    if show or (show is None and own_figure):
        plt.show()
        return None
    return axes


def _image_key(adata: AnnData, library_id: str | None, img_key: str | None) -> tuple[str | None, str | None]:
    """The library and image to draw under the spots (``None``: no image)."""
    from aestetik import _spatial_uns as uns_spatial

    if not uns_spatial.libraries(adata):
        if img_key not in (None, "auto"):
            raise KeyError(f"img_key {img_key!r} given, but adata.uns has no 'spatial' images")
        return None, None
    library_id = uns_spatial.resolve_library(adata, library_id)
    if img_key is None:
        return library_id, None
    if img_key == "auto":
        return library_id, uns_spatial.choose_image(adata, library_id, None, prefer=("hires", "lowres"))
    return library_id, uns_spatial.choose_image(adata, library_id, img_key, prefer=())


@inject_docs(doc_table_key_plot=doc_table_key_plot)
def spatial(
    adata: AnnData | SpatialData,
    color: str | Sequence[str] = "aestetik_clusters",
    *,
    reference: str | None = None,
    library_id: str | None = None,
    library_key: str | None = None,
    img_key: str | None = "auto",
    match_colors: bool = True,
    ncols: int = 3,
    panel_size: float = 4.0,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    return_fig: bool = False,
    table_key: str | None = None,
    **kwargs: Any,
) -> Figure | Axes | list[Axes] | None:
    """Spots coloured by ``obs`` columns, over the H&E image when there is one.

    One panel per column (e.g. ground truth, expression-only domains, AESTETIK
    domains), side by side. Drawn by :func:`scanpy.pl.spatial` over the image in
    ``uns["spatial"]``, or by :func:`scanpy.pl.embedding` on ``obsm["spatial"]`` for
    data without an image.

    Parameters
    ----------
    adata
        Annotated data with ``obsm["spatial"]``, or a SpatialData object with ``table_key``
        (coordinates from the table's ``obsm["spatial"]``, else the centres of the spots'
        shapes; the image is the one in the table's ``uns["spatial"]``, if any).
    color
        ``obs`` column(s) to show, one panel each.
    reference
        ``obs`` column of known domains: every other panel's title gets its ARI against
        it (on the spots where it is set), and with ``match_colors`` its categories take
        the colour of the reference category they overlap most.
    library_id
        Library in ``uns["spatial"]`` whose image to show; required when there are several.
    library_key
        ``obs`` column of the sample; with ``library_id``, only that sample's spots are shown.
    img_key
        Image of the library: ``"auto"`` (``hires``, else ``lowres``, else the first), a key,
        or ``None`` for no image.
    match_colors
        Align the colours of categorical panels with ``reference``.
    ncols
        Panels per row.
    panel_size
        Inches per panel.
    ax
        Axes to draw into: one, or one per column.
    show
        Show the figure (default: when neither ``ax`` nor ``return_fig`` is given).
    return_fig
        Return the figure.
    {doc_table_key_plot}
    **kwargs
        Passed to :func:`scanpy.pl.spatial` (``size``, ``alpha_img``, ``legend_loc``, ...).

    Returns
    -------
    The figure with ``return_fig``; else the axes when ``show`` is false; else ``None``.

    Examples
    --------
    >>> import aestetik as ae
    >>> adata = ae.datasets.synthetic(n_spots=300)
    >>> fig = ae.pl.spatial(adata, color=["ground_truth"], return_fig=True)
    """
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score

    from aestetik._spatialdata import check_data, is_spatialdata, table_coordinates

    data, adata = adata, check_data(adata, table_key)
    colors = [color] if isinstance(color, str) else list(color)
    missing = [c for c in [*colors, *([reference] if reference else [])] if c not in adata.obs]
    if missing:
        raise KeyError(f"column(s) {missing} not found in adata.obs")
    if "spatial" not in adata.obsm and not is_spatialdata(data):
        raise KeyError("adata.obsm['spatial'] (spot coordinates) is missing")
    coords = table_coordinates(data, adata, None)
    if library_key is not None and library_key not in adata.obs:
        raise KeyError(f"library_key {library_key!r} not found in adata.obs")
    lib, key = _image_key(adata, library_id, img_key)

    mask = np.ones(adata.n_obs, dtype=bool)
    if library_key is not None and library_id is not None:
        mask = (adata.obs[library_key].astype(str) == str(library_id)).to_numpy()
    cols_needed = list(dict.fromkeys([*colors, *([reference] if reference else [])]))
    view = AnnData(
        obs=adata.obs.loc[mask, cols_needed].copy(),
        obsm={"spatial": coords[mask]},
        uns={"spatial": {lib: adata.uns["spatial"][lib]}} if lib is not None else {},
    )
    for c in cols_needed:  # categorical-looking columns become categorical, in the view only
        s = view.obs[c]
        if not isinstance(s.dtype, pd.CategoricalDtype) and (s.dtype == object or pd.api.types.is_integer_dtype(s)):
            view.obs[c] = s.astype(str).astype("category")

    ref_colors = None
    if reference is not None and isinstance(view.obs[reference].dtype, pd.CategoricalDtype):
        ref_cats = [str(c) for c in view.obs[reference].cat.categories]
        ref_colors = dict(zip(ref_cats, _base_palette(len(ref_cats)), strict=True))

    if ax is None:
        n = len(colors)
        nc = min(ncols, n)
        nr = int(np.ceil(n / nc))
        fig, axs = plt.subplots(
            nr, nc, figsize=(panel_size * nc * 1.45, panel_size * nr), squeeze=False, gridspec_kw={"wspace": 0.6}
        )
        axes = list(axs.ravel())
        for extra in axes[n:]:
            extra.remove()
        axes = axes[:n]
    else:
        axes = [ax] if isinstance(ax, Axes) else list(ax)
        if len(axes) != len(colors):
            raise ValueError(f"got {len(axes)} axes for {len(colors)} columns")
        fig = axes[0].figure

    for a, c in zip(axes, colors, strict=True):
        s = view.obs[c]
        title = c
        if reference is not None and c != reference:
            ok = view.obs[reference].notna().to_numpy() & s.notna().to_numpy()
            score = adjusted_rand_score(view.obs[reference][ok].astype(str), s[ok].astype(str))
            title = f"{c}  (ARI {score:.2f})"
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = [str(x) for x in s.cat.categories]
            if ref_colors is not None and c == reference:
                pal = [ref_colors[x] for x in cats]
            elif ref_colors is not None and match_colors:
                m = _matched_colors(s, view.obs[reference], ref_colors)
                pal = [m[x] for x in cats]
            else:
                pal = _base_palette(len(cats))
            view.uns[f"{c}_colors"] = pal
        opts = {"title": title, "show": False, "ax": a} | kwargs
        with warnings.catch_warnings():  # scanpy's own deprecation notices are not the user's business
            warnings.simplefilter("ignore", category=FutureWarning)
            warnings.simplefilter("ignore", category=PendingDeprecationWarning)
            if key is not None:
                sc.pl.spatial(view, color=c, img_key=key, library_id=lib, **opts)
            else:
                sc.pl.embedding(view, basis="spatial", color=c, **opts)
            a.set_aspect("equal")
            if not a.yaxis_inverted():
                a.invert_yaxis()
    return _finish(fig, axes[0] if len(axes) == 1 else axes, own_figure=ax is None, show=show, return_fig=return_fig)


@inject_docs(doc_table_key_plot=doc_table_key_plot)
def loss(
    adata: AnnData | SpatialData,
    *,
    key: str = "aestetik",
    terms: Sequence[str] | None = None,
    logy: bool = False,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
    table_key: str | None = None,
) -> Figure | Axes | None:
    """Training curves stored by :func:`aestetik.tl.embed` in ``uns[key]["history"]``.

    Parameters
    ----------
    adata
        Annotated data after :func:`aestetik.tl.embed` (or a SpatialData object, with ``table_key``).
    key
        ``uns`` key of the run (``key_added`` without ``X_``).
    terms
        Loss terms to draw; default: every term that is not constantly zero.
    logy
        Logarithmic y axis.
    ax
        Axes to draw into.
    show
        Show the figure (default: when neither ``ax`` nor ``return_fig`` is given).
    return_fig
        Return the figure.
    {doc_table_key_plot}

    Returns
    -------
    The figure with ``return_fig``; else the axes when ``show`` is false; else ``None``.

    Examples
    --------
    >>> import aestetik as ae
    >>> adata = ae.datasets.synthetic(n_spots=300)
    >>> ae.pp.transcriptomics(adata)
    >>> ae.tl.embed(adata, n_clusters=3, max_epochs=3, show_progress_bar=False)
    >>> fig = ae.pl.loss(adata, return_fig=True)
    """
    from aestetik._spatialdata import check_data

    adata = check_data(adata, table_key)
    if key not in adata.uns or "history" not in adata.uns[key]:
        raise KeyError(f"adata.uns[{key!r}]['history'] not found; run aestetik.tl.embed first")
    history = adata.uns[key]["history"]
    if terms is None:
        terms = [t for t, v in history.items() if np.any(np.asarray(v) != 0)]
    missing = [t for t in terms if t not in history]
    if missing:
        raise KeyError(f"loss term(s) {missing} not in the history (available: {list(history)})")
    own_axes = ax is None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
    else:
        fig = ax.figure
    for t in terms:
        v = np.asarray(history[t])
        ax.plot(np.arange(1, len(v) + 1), v, label=t, lw=2 if t in ("loss", "val_loss") else 1.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    ax.legend(frameon=False, fontsize="small")
    ax.set_title(f"{key}: training curves")
    return _finish(fig, ax, own_figure=own_axes, show=show, return_fig=return_fig)
