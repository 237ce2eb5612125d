"""timed assessments: accommodations (once per student) and per-exam overrides (issue 15).

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accommodations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_pk', sa.Integer(), nullable=False),
    sa.Column('time_factor', sa.Float(), nullable=False),
    sa.Column('extra_minutes', sa.Float(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('set_by', sa.String(length=320), nullable=False),
    sa.Column('set_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['student_pk'], ['students.id'], name=op.f('fk_accommodations_student_pk_students'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accommodations')),
    sa.UniqueConstraint('student_pk', name=op.f('uq_accommodations_student_pk'))
    )
    op.create_table('exam_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_pk', sa.Integer(), nullable=False),
    sa.Column('assignment_pk', sa.Integer(), nullable=False),
    sa.Column('extra_minutes', sa.Float(), nullable=False),
    sa.Column('window_extension_minutes', sa.Float(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('set_by', sa.String(length=320), nullable=False),
    sa.Column('set_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_pk'], ['assignments.id'], name=op.f('fk_exam_overrides_assignment_pk_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['student_pk'], ['students.id'], name=op.f('fk_exam_overrides_student_pk_students'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exam_overrides')),
    sa.UniqueConstraint('student_pk', 'assignment_pk', name=op.f('uq_exam_overrides_student_pk_assignment_pk'))
    )
    with op.batch_alter_table('exam_overrides', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exam_overrides_student_pk'), ['student_pk'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('exam_overrides', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exam_overrides_student_pk'))
    op.drop_table('exam_overrides')
    op.drop_table('accommodations')
