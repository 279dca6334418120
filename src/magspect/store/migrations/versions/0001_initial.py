"""Initial record schema: inspections, defects, measurements, kept images.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_S = sa.String


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", _S(32), primary_key=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inspected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", _S(128)),
        sa.Column("serial", _S(128)),
        sa.Column("part_number", _S(128)),
        sa.Column("revision", _S(128)),
        sa.Column("melt_lot", _S(128)),
        sa.Column("sinter_lot", _S(128)),
        sa.Column("plating_lot", _S(128)),
        sa.Column("inspection_lot", _S(128)),
        sa.Column("station", _S(128)),
        sa.Column("verdict", _S(16), nullable=False),
        sa.Column("spec_id", _S(128)),
        sa.Column("spec_version", sa.Integer),
        sa.Column("model_name", _S(256)),
        sa.Column("model_sha256", _S(64)),
        sa.Column("model_provider", _S(128)),
        sa.Column("calibration_id", _S(128)),
        sa.Column("views", _S(64), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("total_ms", sa.Float),
        sa.Column("timings_json", sa.Text, nullable=False),
        sa.Column("result_json", sa.Text, nullable=False),
    )
    for col in ("recorded_at", "serial", "melt_lot", "sinter_lot", "plating_lot", "inspection_lot", "verdict",
                "spec_id"):
        op.create_index(f"ix_inspections_{col}", "inspections", [col])
    op.create_index("ix_inspections_recorded_id", "inspections", ["recorded_at", "id"])

    op.create_table(
        "defects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("inspection_id", _S(32), sa.ForeignKey("inspections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("class_name", _S(32), nullable=False),
        sa.Column("subtype", _S(32)),
        sa.Column("zone", _S(32), nullable=False),
        sa.Column("view", _S(16), nullable=False),
        sa.Column("length_mm", sa.Float, nullable=False),
        sa.Column("width_mm", sa.Float, nullable=False),
        sa.Column("depth_mm", sa.Float),
        sa.Column("area_mm2", sa.Float, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("edge_index", sa.Integer),
    )
    op.create_index("ix_defects_inspection_id", "defects", ["inspection_id"])
    op.create_index("ix_defects_class_name", "defects", ["class_name"])

    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("inspection_id", _S(32), sa.ForeignKey("inspections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", _S(64), nullable=False),
        sa.Column("unit", _S(8), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("nominal", sa.Float, nullable=False),
        sa.Column("tol_minus", sa.Float, nullable=False),
        sa.Column("tol_plus", sa.Float, nullable=False),
        sa.Column("uncertainty", sa.Float, nullable=False),
        sa.Column("status", _S(16), nullable=False),
        sa.Column("view", _S(16)),
    )
    op.create_index("ix_measurements_inspection_id", "measurements", ["inspection_id"])

    op.create_table(
        "images",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("inspection_id", _S(32), sa.ForeignKey("inspections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("view", _S(16), nullable=False),
        sa.Column("kind", _S(16), nullable=False),
        sa.Column("path", _S(512), nullable=False),
        sa.Column("sha256", _S(64), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_images_inspection_id", "images", ["inspection_id"])
    op.create_index("ix_images_kept_at", "images", ["kept_at"])


def downgrade() -> None:
    op.drop_table("images")
    op.drop_table("measurements")
    op.drop_table("defects")
    op.drop_table("inspections")
