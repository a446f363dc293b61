"""Li's factorisation rules for pixelated RCWA layers: exact Fourier matrices of a grid of flat-topped pixels.

A relief layer of a patch is a ``P × P`` grid of pixels (``eps[y, x]`` constant over pixel ``[x·p, (x+1)·p) ×
[y·p, (y+1)·p)``), so every wall is parallel to x or y. Laurent's rule (the plain Toeplitz matrix of ε, what
torcwa builds) converges slowly for fields crossing those walls. Li's rules (L. Li, "New formulation of the
Fourier modal method for crossed surface-relief gratings", J. Opt. Soc. Am. A 14, 2758–2767, 1997) are exact
for such a grid in the limit and converge fast:

* ``ε_xx = ⌈⌊ε⌋⌉``: D_x = ε_xx·E_x with E_x normal to the walls of constant x: inverse rule along x (for each
  pixel row, the inverse of the Toeplitz matrix of 1/ε along x), then Laurent's rule along y;
* ``ε_yy = ⌊⌈ε⌉⌋``: the same with x and y exchanged;
* ``ε_zz = ⟦ε⟧`` (Laurent in both): E_z is tangential to every wall.

All Fourier coefficients are the exact ones of the pixel indicators (no sampling, no half-cell shift), so the
matrices belong to the pixel-aligned patch. :class:`LiRcwa` is torcwa's S-matrix RCWA with one extra layer
method, :meth:`LiRcwa.add_pixel_layer`, whose eigenproblem uses these matrices (torcwa itself offers Laurent's
rule only). Harmonic ordering is torcwa's: flat index ``i = ix·(2My + 1) + iy`` for orders ``(mx, my)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torcwa

__all__ = ["LiRcwa", "pixel_coefficients", "laurent_matrix", "li_matrices"]


def pixel_coefficients(pixels: int, max_order: int) -> np.ndarray:
    """``(2K+1, P)`` complex: Fourier coefficient ``k ∈ [−K, K]`` of the indicator of pixel ``j`` along one axis.

    ``c_j(k) = (1/L)∫_{j·p}^{(j+1)·p} exp(−i2πk·x/L) dx`` with ``L = P·p``; row ``k + K``.
    """
    k = np.arange(-max_order, max_order + 1, dtype=np.float64)[:, None]
    j = np.arange(pixels, dtype=np.float64)[None, :]
    safe = np.where(k == 0, 1.0, k)
    c = (np.exp(-2j * math.pi * safe * j / pixels) - np.exp(-2j * math.pi * safe * (j + 1) / pixels)) / (
        2j * math.pi * safe)
    return np.where(k == 0, 1.0 / pixels, c)


def _toeplitz(values: np.ndarray, coeff: np.ndarray, m: int) -> np.ndarray:
    """``(..., 2m+1, 2m+1)``: Toeplitz matrices ``T[a, b] = f̂(a − b)`` of piecewise-constant functions.

    ``values``: ``(..., P)`` the function on each pixel; ``coeff``: ``(4m+1, P)`` from :func:`pixel_coefficients`.
    """
    fhat = values @ coeff.T  # (..., 4m+1), index k + 2m
    idx = np.arange(2 * m + 1)
    return fhat[..., idx[:, None] - idx[None, :] + 2 * m]


def laurent_matrix(eps: np.ndarray, mx: int, my: int) -> np.ndarray:
    """``(N, N)`` with ``N = (2mx+1)(2my+1)``: Laurent's rule ⟦ε⟧ of a pixel grid ``eps[y, x]`` (torcwa order)."""
    py, px = eps.shape
    cx, cy = pixel_coefficients(px, 2 * mx), pixel_coefficients(py, 2 * my)
    fhat = cy @ eps @ cx.T  # (4my+1, 4mx+1): coefficient (ky, kx)
    ix, iy = np.arange(2 * mx + 1), np.arange(2 * my + 1)
    dx = ix[:, None] - ix[None, :] + 2 * mx  # (a, a')
    dy = iy[:, None] - iy[None, :] + 2 * my  # (b, b')
    full = fhat[dy[None, :, None, :], dx[:, None, :, None]]  # [a, b, a', b']
    n = (2 * mx + 1) * (2 * my + 1)
    return full.reshape(n, n)


def li_matrices(eps: np.ndarray, mx: int, my: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ε_xx, ε_yy)``, each ``(N, N)`` (torcwa order): Li's rules ⌈⌊ε⌋⌉ and ⌊⌈ε⌉⌋ for a pixel grid ``eps[y, x]``.

    ε_xx: for each pixel row ``r`` the inverse of the x-Toeplitz matrix of ``1/ε[r, :]``, combined along y with
    the row indicators' coefficients; ε_yy likewise with columns and x.
    """
    py, px = eps.shape
    cx2, cy2 = pixel_coefficients(px, 2 * mx), pixel_coefficients(py, 2 * my)
    rows = np.linalg.inv(_toeplitz(1.0 / eps, cx2, mx))  # (py, 2mx+1, 2mx+1): per pixel row
    cols = np.linalg.inv(_toeplitz(1.0 / eps.T, cy2, my))  # (px, 2my+1, 2my+1): per pixel column
    ix, iy = np.arange(2 * mx + 1), np.arange(2 * my + 1)
    ty = cy2[iy[:, None] - iy[None, :] + 2 * my]  # (b, b', py): row r's coefficient at b − b'
    tx = cx2[ix[:, None] - ix[None, :] + 2 * mx]  # (a, a', px)
    n = (2 * mx + 1) * (2 * my + 1)
    exx = np.einsum("rac,bdr->abcd", rows, ty).reshape(n, n)  # [a, b, a', b']
    eyy = np.einsum("jbd,acj->abcd", cols, tx).reshape(n, n)
    return exx, eyy


class LiRcwa(torcwa.rcwa):
    """torcwa's RCWA for transmission and reflection only, with :meth:`add_pixel_layer` (Li's rules).

    Two changes to the parent, neither of which alters a result: each layer's S-matrix is built from two
    ``2N × 2N`` inverses instead of two ``4N × 4N`` ones (the layer's coupling matrix is block-symmetric, so it
    splits into its sum and difference blocks), and the global S-matrix is composed without the modal
    coefficients that only torcwa's field maps need (those maps are therefore unavailable). A test checks the
    S-matrices against torcwa's own to round-off.
    """

    def add_pixel_layer(self, thickness: float, eps: np.ndarray) -> None:
        """Add a layer of ``thickness`` (torcwa's length unit) whose permittivity is the pixel grid ``eps[y, x]``.

        Non-magnetic (μ = 1). The eigenproblem uses Li's rules: ``P`` with ``⟦ε⟧⁻¹`` (E_z), ``Q`` with
        ``ε_xx`` and ``ε_yy``.
        """
        mx, my = int(self.order[0]), int(self.order[1])
        eps = np.asarray(eps, dtype=np.complex128)
        as_t = lambda a: torch.as_tensor(a, dtype=self._dtype, device=self._device)  # noqa: E731
        ezz, (exx, eyy) = as_t(laurent_matrix(eps, mx, my)), map(as_t, li_matrices(eps, mx, my))
        eye = torch.eye(self.order_N, dtype=self._dtype, device=self._device)
        zero = torch.zeros_like(eye)
        self.eps_conv.append(ezz)
        self.mu_conv.append(eye)
        self.layer_N += 1
        self.thickness.append(thickness)
        kxy = torch.vstack((self.Kx_norm, self.Ky_norm))
        p_mat = torch.hstack((torch.vstack((zero, -eye)), torch.vstack((eye, zero))))
        p_mat = p_mat + kxy @ torch.linalg.solve(ezz, torch.hstack((self.Ky_norm, -self.Kx_norm)))
        q_mat = torch.hstack((torch.vstack((zero, exx)), torch.vstack((-eyy, zero))))
        q_mat = q_mat + kxy @ torch.hstack((-self.Ky_norm, self.Kx_norm))
        self.P.append(p_mat)
        self.Q.append(q_mat)
        kz2, vec = torch.linalg.eig(p_mat @ q_mat)
        kz = torch.sqrt(kz2)
        self.kz_norm.append(torch.where(torch.imag(kz) < 0, -kz, kz))
        self.E_eigvec.append(vec)
        self._solve_layer_smatrix()

    def _solve_layer_smatrix(self) -> None:
        """The last layer's S-matrix against the free-space gap medium (same result as torcwa's, fewer flops)."""
        w, kz = self.E_eigvec[-1], self.kz_norm[-1]
        if getattr(self, "_vf_inv", None) is None:
            self._vf_inv = torch.linalg.inv(self.Vf)
        v = torch.linalg.solve(self.P[-1], w * kz[None, :])  # H eigenvectors
        self.H_eigvec.append(v)
        b = self._vf_inv @ v
        x = torch.exp(1.0j * self.omega * kz * self.thickness[-1])
        a_plus, c = w + b, (w - b) * x[None, :]
        s_inv, d_inv = torch.linalg.inv(a_plus + c), torch.linalg.inv(a_plus - c)
        wx = w * x[None, :]
        s11 = (wx + w) @ s_inv + (wx - w) @ d_inv
        s21 = (w + wx) @ s_inv + (w - wx) @ d_inv - torch.eye(2 * self.order_N, dtype=self._dtype,
                                                              device=self._device)
        self.Cf.append(None)
        self.Cb.append(None)
        self.layer_S11.append(s11)
        self.layer_S21.append(s21)
        self.layer_S12.append(s21)
        self.layer_S22.append(s11)

    def solve_global_smatrix(self) -> None:
        """Compose the global S-matrix (input layer, internal layers, output layer) without modal coefficients."""
        eye = torch.eye(2 * self.order_N, dtype=self._dtype, device=self._device)
        parts = [list(self.Sin)] if hasattr(self, "Sin") else []
        parts += [[self.layer_S11[i], self.layer_S21[i], self.layer_S12[i], self.layer_S22[i]]
                  for i in range(self.layer_N)]
        parts += [list(self.Sout)] if hasattr(self, "Sout") else []
        total = parts[0] if parts else [eye, 0 * eye, 0 * eye, eye]
        for nxt in parts[1:]:
            total = _star(total, nxt, eye)
        self.S = total
        self.C = [[], []]


def _star(sm: list[torch.Tensor], sn: list[torch.Tensor], eye: torch.Tensor) -> list[torch.Tensor]:
    """Redheffer product of two S-matrices ``[S11, S21, S12, S22]`` (torcwa's convention, as its ``_RS_prod``)."""
    tmp1 = torch.linalg.inv(eye - sm[2] @ sn[1])
    tmp2 = torch.linalg.inv(eye - sn[1] @ sm[2])
    return [sn[0] @ (tmp1 @ sm[0]), sm[1] + sm[3] @ (tmp2 @ (sn[1] @ sm[0])),
            sn[2] + sn[0] @ (tmp1 @ (sm[2] @ sn[3])), sm[3] @ (tmp2 @ sn[3])]
