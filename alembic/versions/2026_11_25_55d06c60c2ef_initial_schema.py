"""initial schema

Reviewed by hand: every table of DESIGN §4, the hot-path indexes of §5, the
unique constraint that makes a double answer a no-op, and the partial unique
indexes that allow one running quiz per channel (channel mode) and one per
player and channel (solo mode). Enums are check-constrained strings.

Revision ID: 55d06c60c2ef
Revises: 
Create Date: 2026-11-25 06:14:12.935249

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '55d06c60c2ef'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('achievements',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('icon', sa.String(length=16), server_default=sa.text("'🏅'"), nullable=False),
    sa.Column('xp_reward', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_achievements'))
    )
    op.create_table('guilds',
    sa.Column('guild_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('guild_id', name=op.f('pk_guilds'))
    )
    op.create_table('users',
    sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('points', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('xp', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('level', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_active', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_users'))
    )
    op.create_index('ix_users_points_rank', 'users', [sa.literal_column('points DESC'), 'user_id'], unique=False)
    op.create_table('guild_members',
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('points', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('xp', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('level', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('answered', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('correct', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('quizzes_taken', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('answer_streak', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('best_streak', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('daily_streak', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('best_daily_streak', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_active_day', sa.Date(), nullable=True),
    sa.Column('joined_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_active', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.guild_id'], name=op.f('fk_guild_members_guild_id_guilds'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.user_id'], name=op.f('fk_guild_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('guild_id', 'user_id', name=op.f('pk_guild_members'))
    )
    op.create_index('ix_guild_members_leaderboard', 'guild_members', ['guild_id', sa.literal_column('points DESC'), 'user_id'], unique=False)
    op.create_index('ix_guild_members_user_id', 'guild_members', ['user_id'], unique=False)
    op.create_table('questions',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=True),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('difficulty', sa.Enum('easy', 'medium', 'hard', name='difficulty', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('kind', sa.Enum('multiple_choice', 'true_false', 'free_text', name='kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('choices', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('answer', sa.String(length=200), nullable=False),
    sa.Column('accepted', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('tolerance', sa.Float(), nullable=True),
    sa.Column('explanation', sa.Text(), server_default=sa.text("''"), nullable=False),
    sa.Column('source', sa.String(length=32), server_default=sa.text("'admin'"), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.guild_id'], name=op.f('fk_questions_guild_id_guilds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_questions'))
    )
    op.create_index('ix_questions_guild_id', 'questions', ['guild_id'], unique=False)
    op.create_index('ix_questions_pool', 'questions', ['topic', 'difficulty', 'category'], unique=False, postgresql_where=sa.text('enabled'))
    op.create_index('uq_questions_scope_hash', 'questions', ['guild_id', 'content_hash'], unique=True, postgresql_nulls_not_distinct=True)
    op.create_table('quiz_sessions',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('channel_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('mode', sa.Enum('solo', 'channel', name='mode', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('status', sa.Enum('active', 'finished', 'cancelled', 'expired', name='status', native_enum=False, create_constraint=True), server_default=sa.text("'active'"), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=True),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('difficulty', sa.String(length=16), server_default=sa.text("'mixed'"), nullable=False),
    sa.Column('question_ids', postgresql.ARRAY(sa.BigInteger()), nullable=False),
    sa.Column('position', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('time_limit', sa.Integer(), server_default=sa.text('30'), nullable=False),
    sa.Column('question_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('answered_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('correct_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('points_earned', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.guild_id'], name=op.f('fk_quiz_sessions_guild_id_guilds'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.user_id'], name=op.f('fk_quiz_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quiz_sessions'))
    )
    op.create_index('ix_quiz_sessions_active', 'quiz_sessions', ['guild_id'], unique=False, postgresql_where=sa.text("status = 'active'"))
    op.create_index('ix_quiz_sessions_user_recent', 'quiz_sessions', ['user_id', 'guild_id', sa.literal_column('created_at DESC')], unique=False)
    op.create_index('uq_quiz_sessions_active_channel', 'quiz_sessions', ['channel_id'], unique=True, postgresql_where=sa.text("status = 'active' AND mode = 'channel'"))
    op.create_index('uq_quiz_sessions_active_solo', 'quiz_sessions', ['channel_id', 'user_id'], unique=True, postgresql_where=sa.text("status = 'active' AND mode = 'solo'"))
    op.create_table('user_achievements',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('earned_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['code'], ['achievements.code'], name=op.f('fk_user_achievements_code_achievements'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.guild_id'], name=op.f('fk_user_achievements_guild_id_guilds'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.user_id'], name=op.f('fk_user_achievements_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'guild_id', 'code', name=op.f('pk_user_achievements'))
    )
    op.create_index('ix_user_achievements_recent', 'user_achievements', ['user_id', 'guild_id', sa.literal_column('earned_at DESC')], unique=False)
    op.create_table('answers',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('session_id', sa.BigInteger(), nullable=False),
    sa.Column('question_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('given', sa.String(length=200), nullable=False),
    sa.Column('correct', sa.Boolean(), nullable=False),
    sa.Column('response_ms', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['question_id'], ['questions.id'], name=op.f('fk_answers_question_id_questions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['quiz_sessions.id'], name=op.f('fk_answers_session_id_quiz_sessions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.user_id'], name=op.f('fk_answers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_answers')),
    sa.UniqueConstraint('session_id', 'question_id', 'user_id', name=op.f('uq_answers_session_id_question_id_user_id'))
    )
    op.create_index('ix_answers_guild_period', 'answers', ['guild_id', 'answered_at'], unique=False, postgresql_include=['user_id', 'points'])
    op.create_index('ix_answers_question_id', 'answers', ['question_id'], unique=False)
    op.create_index('ix_answers_user_guild_recent', 'answers', ['user_id', 'guild_id', sa.literal_column('answered_at DESC')], unique=False)
    op.create_table('review_cards',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('question_id', sa.BigInteger(), nullable=False),
    sa.Column('due', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('stability', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('difficulty', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('reps', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('lapses', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_review', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['question_id'], ['questions.id'], name=op.f('fk_review_cards_question_id_questions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.user_id'], name=op.f('fk_review_cards_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'question_id', name=op.f('pk_review_cards'))
    )
    op.create_index('ix_review_cards_question_id', 'review_cards', ['question_id'], unique=False)
    op.create_index('ix_review_cards_user_due', 'review_cards', ['user_id', 'due'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_review_cards_user_due', table_name='review_cards')
    op.drop_index('ix_review_cards_question_id', table_name='review_cards')
    op.drop_table('review_cards')
    op.drop_index('ix_answers_user_guild_recent', table_name='answers')
    op.drop_index('ix_answers_question_id', table_name='answers')
    op.drop_index('ix_answers_guild_period', table_name='answers', postgresql_include=['user_id', 'points'])
    op.drop_table('answers')
    op.drop_index('ix_user_achievements_recent', table_name='user_achievements')
    op.drop_table('user_achievements')
    op.drop_index('uq_quiz_sessions_active_solo', table_name='quiz_sessions', postgresql_where=sa.text("status = 'active' AND mode = 'solo'"))
    op.drop_index('uq_quiz_sessions_active_channel', table_name='quiz_sessions', postgresql_where=sa.text("status = 'active' AND mode = 'channel'"))
    op.drop_index('ix_quiz_sessions_user_recent', table_name='quiz_sessions')
    op.drop_index('ix_quiz_sessions_active', table_name='quiz_sessions', postgresql_where=sa.text("status = 'active'"))
    op.drop_table('quiz_sessions')
    op.drop_index('uq_questions_scope_hash', table_name='questions', postgresql_nulls_not_distinct=True)
    op.drop_index('ix_questions_pool', table_name='questions', postgresql_where=sa.text('enabled'))
    op.drop_index('ix_questions_guild_id', table_name='questions')
    op.drop_table('questions')
    op.drop_index('ix_guild_members_user_id', table_name='guild_members')
    op.drop_index('ix_guild_members_leaderboard', table_name='guild_members')
    op.drop_table('guild_members')
    op.drop_index('ix_users_points_rank', table_name='users')
    op.drop_table('users')
    op.drop_table('guilds')
    op.drop_table('achievements')
